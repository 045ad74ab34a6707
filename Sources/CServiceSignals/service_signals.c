#include "service_signals.h"
#include <signal.h>
#include <string.h>

// One process-wide flag, written only by the handler (a sig_atomic_t store is async-signal-safe).
static volatile sig_atomic_t received_signal = 0;

static void on_stop_signal(int signo) { received_signal = signo; }

int service_signals_install(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    if (sigaction(SIGINT, &action, NULL) != 0) return -1;
    if (sigaction(SIGTERM, &action, NULL) != 0) return -1;
    return 0;
}

int service_signals_received(void) { return received_signal; }
