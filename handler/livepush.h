/* livepush: sends committed device states to the dashboard through SignalR (target newMessage).
 * A failed push is logged and never fails the invocation: the state is safe in the table. */
#ifndef ENVIROMON_LIVEPUSH_H
#define ENVIROMON_LIVEPUSH_H

#include <jansson.h>

/* Pushes each device object of the array (borrowed). No-op without a SignalR connection. */
void livepushDevices(json_t *devices);

#endif
