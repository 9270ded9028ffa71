#include "app.h"

void fnNegotiate(const serverRequest *req, serverResponse *res) { (void)req; serverSetError(res, 503, "SignalR is not configured"); }
void fnGetDeviceState(const serverRequest *req, serverResponse *res) { (void)req; serverSetError(res, 503, "not configured"); }
void fnSendSignalRMessage(const serverRequest *req, serverResponse *res) { (void)req; serverSetError(res, 503, "SignalR is not configured"); }
int fnStatic(const serverRequest *req, serverResponse *res) { (void)req; (void)res; return 0; }
