import CServiceSignals
import Glibc

/// SIGINT and SIGTERM as a stop request for a long-running service: `sigaction` handlers that
/// only record the signal (async-signal-safe); the service polls ``received`` from its own loop.
///
/// Installed explicitly, so a process started in the background by a non-interactive shell (which
/// inherits SIGINT as SIG_IGN) still stops on Ctrl-C or `kill -INT`.
package enum StopSignals {
    /// Installs the handlers (idempotent). Throws the `sigaction` error.
    package static func install() throws(Errno) {
        guard service_signals_install() == 0 else { throw Errno(rawValue: errno) }
    }

    /// The stop signal received so far (`SIGINT` or `SIGTERM`), or `nil`.
    package static var received: Int32? {
        let signo = service_signals_received()
        return signo == 0 ? nil : signo
    }

    /// `SIGINT`, `SIGTERM` or `signal N`.
    package static func name(_ signo: Int32) -> String {
        switch signo {
        case SIGINT: return "SIGINT"
        case SIGTERM: return "SIGTERM"
        default: return "signal \(signo)"
        }
    }
}
