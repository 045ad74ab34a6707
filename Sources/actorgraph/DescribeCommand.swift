import ActorGraphExamples
import ArgumentParser
import Foundation

/// `actorgraph describe NAME`: placement and channels as Graphviz DOT, rendered when `dot` is installed.
struct Describe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "describe",
        abstract: "Print a graph's placement and channels as Graphviz DOT; write NAME.dot and NAME.svg/png.",
        discussion: """
        The DOT (from `compiled.dot()`) goes to stdout; NAME.dot is written to --output, and, when \
        Graphviz `dot` is on the PATH, NAME.svg and NAME.png next to it. Status lines go to stderr.
        """)

    @Argument(help: "The example graph to describe (see `actorgraph list`).")
    var name: String

    @Option(help: "Directory for NAME.dot, NAME.svg and NAME.png.")
    var output = "."

    @Flag(help: "Only print the DOT; write no files.")
    var noFiles = false

    @OptionGroup(title: "Compile options")
    var engine: EngineOptions

    func run() throws {
        let example = try CLI.example(named: name)
        let dot: String
        do {
            dot = try example.describe(engine.compileOptions)
        } catch {
            throw CLI.fail(error)
        }
        print(dot, terminator: dot.hasSuffix("\n") ? "" : "\n")
        if noFiles { return }

        let directory = URL(fileURLWithPath: output, isDirectory: true)
        let dotFile = directory.appendingPathComponent("\(example.name).dot")
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try dot.write(to: dotFile, atomically: true, encoding: .utf8)
        } catch {
            throw CLI.fail("cannot write \(dotFile.path): \(error.localizedDescription)")
        }
        CLI.printError("wrote \(dotFile.path)")

        guard let graphviz = Self.findExecutable("dot") else {
            CLI.printError("Graphviz `dot` is not on the PATH: no SVG/PNG rendered (install it with `apt-get install graphviz`)")
            return
        }
        for format in ["svg", "png"] {
            let image = directory.appendingPathComponent("\(example.name).\(format)")
            let process = Process()
            process.executableURL = URL(fileURLWithPath: graphviz)
            process.arguments = ["-T\(format)", dotFile.path, "-o", image.path]
            do {
                try process.run()
                process.waitUntilExit()
            } catch {
                throw CLI.fail("cannot run \(graphviz): \(error.localizedDescription)")
            }
            guard process.terminationStatus == 0 else {
                throw CLI.fail("\(graphviz) -T\(format) exited with status \(process.terminationStatus)")
            }
            CLI.printError("wrote \(image.path)")
        }
    }

    /// The first executable called `name` in a directory of `$PATH`.
    static func findExecutable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
