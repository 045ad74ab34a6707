// Umbrella header for libnuma.
#include <features.h>
#include <numa.h>
#include <numaif.h>
