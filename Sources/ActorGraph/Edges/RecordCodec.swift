/// How a network edge turns datagrams into inputs and outputs into reply datagrams.
public struct RecordCodec<Input, Output>: Sendable {
    /// The largest record accepted; a longer datagram is rejected as oversized.
    public var maxRecordSize: Int
    /// Decodes one record; a thrown error rejects that record (counted, answered with an error reply).
    public var decode: @Sendable (UnsafeRawBufferPointer) throws -> Input
    /// Encodes one output into `buffer` (`maxRecordSize` bytes); returns the bytes written.
    public var encode: @Sendable (Output, UnsafeMutableRawBufferPointer) -> Int
    /// Encodes an error reply for a rejected record or a failed execution; returns the bytes written.
    public var encodeError: @Sendable (String, UnsafeMutableRawBufferPointer) -> Int

    /// A codec from its four parts.
    public init(
        maxRecordSize: Int,
        decode: @escaping @Sendable (UnsafeRawBufferPointer) throws -> Input,
        encode: @escaping @Sendable (Output, UnsafeMutableRawBufferPointer) -> Int,
        encodeError: @escaping @Sendable (String, UnsafeMutableRawBufferPointer) -> Int
    ) {
        self.maxRecordSize = maxRecordSize
        self.decode = decode
        self.encode = encode
        self.encodeError = encodeError
    }
}

/// What a network edge counted: nothing is dropped silently.
public struct ServiceStatistics: Sendable, Equatable, CustomStringConvertible {
    /// Datagrams received.
    public var received = 0
    /// Records admitted into the graph.
    public var admitted = 0
    /// Records rejected because they were shorter than a record or failed to decode.
    public var rejectedMalformed = 0
    /// Records rejected because they were longer than `maxRecordSize`.
    public var rejectedOversized = 0
    /// Replies sent for completed executions.
    public var replied = 0
    /// Executions whose stage threw (answered with an error reply).
    public var failedExecutions = 0
    /// Replies the kernel refused (e.g. the peer's port is closed: it disconnected).
    public var sendErrors = 0
    /// Receive errors reported by the kernel.
    public var receiveErrors = 0
    /// Times the graph was full and the source held a record back (back-pressure, not a drop).
    public var backPressureStalls = 0
    /// Datagrams that arrived after ``ServedGraph/stopReceiving()`` and were not admitted.
    public var ignoredWhileStopping = 0
    /// Records received and not answered yet (executing, or held back by back-pressure).
    public var inFlight = 0
    /// Whether the source stopped receiving (``ServedGraph/stopReceiving()`` reached the worker).
    public var receiving = true

    /// All counters zero.
    public init() {}

    /// One line with every counter.
    public var description: String {
        "received=\(received) admitted=\(admitted) rejected_malformed=\(rejectedMalformed) rejected_oversized=\(rejectedOversized) replied=\(replied) failed_executions=\(failedExecutions) send_errors=\(sendErrors) receive_errors=\(receiveErrors) backpressure_stalls=\(backPressureStalls) ignored_while_stopping=\(ignoredWhileStopping) in_flight=\(inFlight)"
    }
}
