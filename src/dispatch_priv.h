/* dispatch_priv.h -- what dispatch_reload.c uses of dispatch.c */
#ifndef BATON_DISPATCH_PRIV_H
#define BATON_DISPATCH_PRIV_H

#include "dispatch.h"

/* The room lets go of s: every copy it holds is closed (d may be NULL). */
void	dsock_close(struct dispatch *d, struct dsock *s);

#endif
