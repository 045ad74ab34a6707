import ActorGraph
import Glibc
import IsolationFixtures

// The worker executable of the isolation tests: an XCTest bundle runs inside the test runner, so
// `/proc/self/exe` there is not a program that knows the test graphs. Tests compile with
// `ProcessOptions(workerExecutable:)` pointing here.
//
// `AG_FIXTURE_FORGET_ENTRY=1` plays a program that forgot the entry line: it compiles a graph while
// being a worker child, which must refuse instead of spawning workers of its own.
if getenv("AG_FIXTURE_FORGET_ENTRY") == nil {
    IsolatedWorker.runIfChild(graphs: { FixtureGraphs.all })
}

// Run directly: a one-execution self-check with process workers.
do {
    let compiled = try FixtureGraphs.echo().compile(
        CompileOptions(workers: 1, pinWorkers: false, isolation: .processes)
    )
    print("echo(41) = \(try compiled.execute(41)) in worker process \(compiled.isolationStatistics.workerProcessIDs)")
    compiled.shutdown()
} catch {
    print("error: \(error)")
    exit(1)
}
