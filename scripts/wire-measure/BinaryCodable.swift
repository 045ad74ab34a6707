// Measurement only (scripts/wire-measure/run.sh), not part of the engine.
// Minimal keyless binary Codable encoder/decoder (measurement prototype): fields in declaration
// order, no keys, counts for unkeyed containers patched in place. Writes straight into the slot.
final class BinEncoder: Encoder {
    var writer: WireWriter
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] = [:]
    init(_ buffer: UnsafeMutableRawBufferPointer) { writer = WireWriter(buffer) }
    func container<Key: CodingKey>(keyedBy: Key.Type) -> KeyedEncodingContainer<Key> { KeyedEncodingContainer(K<Key>(e: self)) }
    func unkeyedContainer() -> any UnkeyedEncodingContainer { U(e: self) }
    func singleValueContainer() -> any SingleValueEncodingContainer { S(e: self) }
    func enc<T: Encodable>(_ v: T) throws {
        if let s = v as? String { writer.write(s); return }
        if let a = v as? [Float] { writer.write(a); return }
        try v.encode(to: self)
    }
    struct K<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let e: BinEncoder
        var codingPath: [any CodingKey] { [] }
        mutating func encodeNil(forKey key: Key) throws { e.writer.writeRaw(UInt8(0)) }
        mutating func encode(_ value: Bool, forKey key: Key) throws { e.writer.write(value) }
        mutating func encode(_ value: String, forKey key: Key) throws { e.writer.write(value) }
        mutating func encode(_ value: Double, forKey key: Key) throws { e.writer.write(value) }
        mutating func encode(_ value: Float, forKey key: Key) throws { e.writer.write(value) }
        mutating func encode(_ value: Int, forKey key: Key) throws { e.writer.write(value) }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { try e.enc(value) }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> { e.container(keyedBy: keyType) }
        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer { e.unkeyedContainer() }
        mutating func superEncoder() -> any Encoder { e }
        mutating func superEncoder(forKey key: Key) -> any Encoder { e }
    }
    struct U: UnkeyedEncodingContainer {
        let e: BinEncoder
        let at: Int
        var count = 0
        init(e: BinEncoder) { self.e = e; at = e.writer.count; e.writer.writeCount(0) }
        var codingPath: [any CodingKey] { [] }
        mutating func bump() { count += 1; if at + 4 <= e.writer.capacity { e.writer.base!.storeBytes(of: UInt32(count), toByteOffset: at, as: UInt32.self) } }
        mutating func encodeNil() throws { bump(); e.writer.writeRaw(UInt8(0)) }
        mutating func encode(_ value: String) throws { bump(); e.writer.write(value) }
        mutating func encode(_ value: Float) throws { bump(); e.writer.write(value) }
        mutating func encode<T: Encodable>(_ value: T) throws { bump(); try e.enc(value) }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> { bump(); return e.container(keyedBy: keyType) }
        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer { bump(); return e.unkeyedContainer() }
        mutating func superEncoder() -> any Encoder { e }
    }
    struct S: SingleValueEncodingContainer {
        let e: BinEncoder
        var codingPath: [any CodingKey] { [] }
        mutating func encodeNil() throws { e.writer.writeRaw(UInt8(0)) }
        mutating func encode(_ value: String) throws { e.writer.write(value) }
        mutating func encode(_ value: Float) throws { e.writer.write(value) }
        mutating func encode<T: Encodable>(_ value: T) throws { try e.enc(value) }
    }
}

final class BinDecoder: Decoder {
    var reader: WireReader
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] = [:]
    init(_ bytes: UnsafeRawBufferPointer) { reader = WireReader(bytes) }
    func container<Key: CodingKey>(keyedBy: Key.Type) throws -> KeyedDecodingContainer<Key> { KeyedDecodingContainer(K<Key>(d: self)) }
    func unkeyedContainer() throws -> any UnkeyedDecodingContainer { try U(d: self) }
    func singleValueContainer() throws -> any SingleValueDecodingContainer { S(d: self) }
    func dec<T: Decodable>(_ t: T.Type) throws -> T {
        if T.self == String.self { return try reader.read(String.self) as! T }
        if T.self == [Float].self { return try reader.read([Float].self) as! T }
        return try T(from: self)
    }
    struct K<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let d: BinDecoder
        var codingPath: [any CodingKey] { [] }
        var allKeys: [Key] { [] }
        func contains(_ key: Key) -> Bool { true }
        func decodeNil(forKey key: Key) throws -> Bool { false }
        func decode(_ type: String.Type, forKey key: Key) throws -> String { try d.reader.read() }
        func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try d.reader.read() }
        func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try d.reader.read() }
        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try d.dec(T.self) }
        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> { try d.container(keyedBy: type) }
        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer { try d.unkeyedContainer() }
        func superDecoder() throws -> any Decoder { d }
        func superDecoder(forKey key: Key) throws -> any Decoder { d }
    }
    struct U: UnkeyedDecodingContainer {
        let d: BinDecoder
        var count: Int?
        var currentIndex = 0
        init(d: BinDecoder) throws { self.d = d; count = try d.reader.readCount() }
        var codingPath: [any CodingKey] { [] }
        var isAtEnd: Bool { currentIndex >= count! }
        mutating func decodeNil() throws -> Bool { false }
        mutating func decode(_ type: String.Type) throws -> String { currentIndex += 1; return try d.reader.read() }
        mutating func decode(_ type: Float.Type) throws -> Float { currentIndex += 1; return try d.reader.read() }
        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { currentIndex += 1; return try d.dec(T.self) }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> { currentIndex += 1; return try d.container(keyedBy: type) }
        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { currentIndex += 1; return try d.unkeyedContainer() }
        mutating func superDecoder() throws -> any Decoder { d }
    }
    struct S: SingleValueDecodingContainer {
        let d: BinDecoder
        var codingPath: [any CodingKey] { [] }
        func decodeNil() -> Bool { false }
        func decode(_ type: String.Type) throws -> String { try d.reader.read() }
        func decode(_ type: Float.Type) throws -> Float { try d.reader.read() }
        func decode<T: Decodable>(_ type: T.Type) throws -> T { try d.dec(T.self) }
    }
}
