import ActorGraph

// A non-Sendable class instance as a value flowing between threads.
final class Message { var text = "" }

func run() throws {
    let graph = Graph(input: Message.self) { x in
        x.then { m in
            m.text += "!"
            return m
        }
    }
    let message = Message()
    let compiled = try graph.compile()
    let pending = try compiled.submit(message)
    message.text += "?"
    _ = try pending.wait()
}
try run()
