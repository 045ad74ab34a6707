import ActorGraphExamples
import ActorGraphReliability
import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

/// `actorgraph fuzz-udp`: starts `actorgraph serve telematics` on 127.0.0.1 and blasts it with
/// random and almost-valid datagrams; every one must be answered correctly, the service must stay
/// alive and its memory flat.
struct FuzzUDPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuzz-udp",
        abstract: "Fuzz the telematics UDP edge: random and almost-valid datagrams, every one answered.",
        discussion: """
            Starts `actorgraph serve telematics` (this binary) on a free port of 127.0.0.1, sends \
            --count datagrams (sizes 0–65 507: valid records, right length with garbage fields, NaN and \
            infinities, extreme ids, bad magic, short, long), checks each is answered (a reply matched by \
            vehicle and timestamp, or an error reply where the reference decoder rejects it), that the \
            service is alive at the end and its resident memory did not grow. Non-zero exit otherwise.
            """
    )

    @Option(help: "Datagrams to send (after a 20 000-datagram warm-up).")
    var count = 1_000_000

    @Option(help: "Seed for the datagrams (default: random, printed).")
    var seed: UInt64?

    @Option(help: "Datagrams outstanding at most (1...64: the service's error-reply pool is 64).")
    var window = 32

    @Option(help: "Resident memory growth of the service (KiB) counted as a leak.")
    var rssLimitKib = 16 << 10

    func validate() throws {
        if count < 1 { throw ValidationError("--count must be at least 1 (got \(count))") }
        if !(1...64).contains(window) { throw ValidationError("--window must be 1...64 (got \(window))") }
        if rssLimitKib < 0 { throw ValidationError("--rss-limit-kib must not be negative (got \(rssLimitKib))") }
    }

    func run() throws {
        let server: LineReadingProcess
        do {
            // --seconds: the service stops by itself should this process die without stopping it.
            let limit = 600 + count / 1_000
            server = try LineReadingProcess(
                path: "/proc/self/exe",
                arguments: ["serve", "telematics", "--port", "0", "--seconds", "\(limit)"]
            )
        } catch {
            throw CLI.fail("cannot start the service: \(error)")
        }
        defer { server.stop() }
        let prefix = "serving telematics on udp 127.0.0.1:"
        guard let banner = server.waitForLine(timeout: .seconds(30), where: { $0.hasPrefix(prefix) }),
            let port = UInt16(banner.dropFirst(prefix.count).prefix { $0.isNumber })
        else {
            throw CLI.fail("the service did not start: \(server.output.joined(separator: " | "))")
        }
        let seed = self.seed ?? UInt64.random(in: 1...UInt64(UInt32.max))
        print("fuzz-udp: service pid=\(server.pid) port=\(port) datagrams=\(count) window=\(window) seed=\(seed)")
        do {
            // Warm-up: the service's tables, buffers and allocator reach their steady size.
            let warm = try DatagramFuzzer(.init(count: 20_000, port: port, seed: seed ^ 0xA5A5, window: window)).run()
            if warm.unanswered + warm.mismatched + warm.garbage > 0 { print("fuzz-udp: warm-up: \(warm)") }
        } catch {
            throw CLI.fail("fuzz-udp: warm-up failed: \(error)")
        }
        let rssStart = ProcessResources.residentKiB(ofProcess: server.pid) ?? -1
        let tally: DatagramFuzzer.Tally
        do {
            tally = try DatagramFuzzer(.init(count: count, port: port, seed: seed, window: window)).run { t in
                print(
                    "fuzz-udp: sent=\(t.sent) answered=\(t.answered) unanswered=\(t.unanswered) mismatched=\(t.mismatched) service_rss_kib=\(ProcessResources.residentKiB(ofProcess: server.pid) ?? -1)"
                )
            }
        } catch {
            throw CLI.fail("fuzz-udp: \(error)")
        }
        // Alive means answering: one more valid record must come back as a reply.
        let probe =
            (try? DatagramFuzzer(.init(count: 200, port: port, seed: seed ^ 0x5A5A, window: 1)).run())
            ?? DatagramFuzzer.Tally()
        let alive = server.isRunning && probe.answered == probe.sent && probe.sent == 200
        let rssEnd = ProcessResources.residentKiB(ofProcess: server.pid) ?? -1
        let kinds = zip(DatagramKind.allCases, tally.kinds).map { "\($0)=\($1)" }.joined(separator: " ")
        print(
            "fuzz-udp: kinds \(kinds) bytes=\(tally.bytesSent) valid=\(tally.sentValid) invalid=\(tally.sentInvalid) garbage_answers=\(tally.garbage)"
        )
        print(
            "fuzz-udp: datagrams=\(tally.sent) answered=\(tally.answered) replies=\(tally.replies) error_replies=\(tally.errorReplies) unanswered=\(tally.unanswered) mismatched=\(tally.mismatched) service_alive=\(alive) rss_growth_kib=\(rssEnd - rssStart)"
        )
        if tally.unanswered > 0 || tally.mismatched > 0 || tally.garbage > 0 || !alive
            || rssEnd - rssStart > rssLimitKib
            || tally.sent != count
        {
            throw ExitCode.failure
        }
    }
}
