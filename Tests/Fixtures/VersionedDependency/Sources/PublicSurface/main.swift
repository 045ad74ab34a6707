// The platform types ActorGraph's public API shows (`EffectiveCPUs`, its `CPUQuota`, the `Errno` of
// `CompileError.platform`) are usable from another package; the rest of ActorGraphPlatform is `package`.
import ActorGraph

let compiled = try Graph(input: Int.self) { x in x.then { $0 + 1 } }.compile()
let cpus = compiled.effectiveCPUs
precondition(cpus.count >= 1 && cpus.cpus > 0 && cpus.affinity >= cpus.count)
let quota = cpus.quota.map { "\($0.cpus) CPUs" } ?? "none"

func describe(_ error: CompileError) -> String {
    guard case .platform(let operation, let errno) = error else { return "\(error)" }
    return "\(operation): errno \(errno.rawValue), \(errno)"
}
print("public surface: \(try compiled.execute(41)) on \(cpus.count) CPU(s), quota \(quota); \(describe(.noStages))")
