#ifndef SERVICE_SIGNALS_H
#define SERVICE_SIGNALS_H

/// Installs `sigaction` handlers for SIGINT and SIGTERM (replacing any inherited SIG_IGN) that
/// record the signal. Returns 0, or -1 with errno set.
int service_signals_install(void);

/// The last stop signal received (SIGINT or SIGTERM), or 0. Async-signal-safe to produce.
int service_signals_received(void);

#endif
