/* hooks: entry points of handler modules that exist only for these tests. The modules define
 * them, but their headers do not declare them: they are no part of any module's interface. */
#ifndef ENVIROMON_TEST_HOOKS_H
#define ENVIROMON_TEST_HOOKS_H

/* livepush.c: forgets the failure state, the counters and the missed pushes. */
void livepushReset(void);

/* httpc.c: the CA bundle httpcCaInit chose, as an absolute path (borrowed, static); "" when
 * libcurl's own defaults (the system's certificates) apply or there are none. */
const char *httpcCaFile(void);

#endif
