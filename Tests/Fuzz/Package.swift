// swift-tools-version:6.1
import PackageDescription

/// libFuzzer harnesses for ActorGraph's network edge, kept out of the main package so its build
/// carries no unsafe flags. Build and run with `bash Tests/Fuzz/run.sh` (see Tests/Fuzz/README.md).
let package = Package(
    name: "ActorGraphFuzz",
    dependencies: [
        .package(name: "ActorGraph", path: "../..")
    ],
    targets: [
        // The record decoder behind `actorgraph serve telematics` (SampleCodec via RecordCodec), the
        // reply codec and the detector fed whatever decodes.
        // Declares libFuzzer's LLVMFuzzerRunDriver for Swift.
        .target(name: "CFuzzerDriver"),
        .executableTarget(
            name: "TelematicsRecordFuzzer",
            dependencies: [
                "CFuzzerDriver",
                .product(name: "ActorGraph", package: "ActorGraph"),
                .product(name: "ActorGraphExamples", package: "ActorGraph"),
            ],
            swiftSettings: [
                .unsafeFlags([
                    "-sanitize=fuzzer,address", "-parse-as-library",
                    // libFuzzer's current coverage kind (SwiftPM's builds otherwise get trace-pc-guard, which it refuses).
                    "-sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp",
                ])
            ],
            linkerSettings: [.unsafeFlags(["-sanitize=fuzzer,address"])]
        ),
    ]
)
