import Glibc

/// This program's file: `/proc/self/exe` resolved. A child started through `ip netns exec` must be
/// given the real path (`/proc/self/exe` there would be `ip`).
package enum SelfExecutable {
    /// `nil` when `/proc/self/exe` cannot be read.
    package static var path: String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
