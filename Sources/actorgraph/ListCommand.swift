import ActorGraphExamples
import ArgumentParser

/// `actorgraph list`: the example graphs, one line each.
struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the example graphs, one line each."
    )

    @Flag(name: .long, help: "Also show what --input each graph accepts and its default --count.")
    var inputs = false

    func run() {
        let width = ExampleCatalog.all.map(\.name.count).max() ?? 0
        for example in ExampleCatalog.all {
            let name = example.name.padding(to: width)
            print("\(name)  \(example.summary)")
            if inputs {
                print(
                    "\(String(repeating: " ", count: width))    --input: \(example.inputHelp); default --count \(example.defaultCount)"
                )
            }
        }
    }
}

extension String {
    func padding(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
