import Glibc

/// Threads runnable on the whole machine right now (every process): the first number of the
/// fourth field of `/proc/loadavg` ("3/345": 3 runnable, the reader included). One `pread` on a
/// descriptor kept open.
package enum SystemLoad {
    private static let descriptor: Int32 = open("/proc/loadavg", O_RDONLY | O_CLOEXEC)

    /// `nil` when `/proc/loadavg` cannot be read.
    package static func runnableThreads() -> Int? {
        guard descriptor >= 0 else { return nil }
        var buffer: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &buffer) { raw -> Int? in
            let n = pread(descriptor, raw.baseAddress, raw.count, 0)
            guard n > 0 else { return nil }
            var spaces = 0
            var value = 0
            var digits = 0
            for i in 0..<n {
                let c = raw[i]
                if spaces < 3 {
                    if c == UInt8(ascii: " ") { spaces += 1 }
                    continue
                }
                if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") {
                    value = value * 10 + Int(c - UInt8(ascii: "0"))
                    digits += 1
                } else {
                    break
                }
            }
            return digits > 0 ? value : nil
        }
    }
}
