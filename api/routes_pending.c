#include <microhttpd.h>

#include "api/internal.h"

#define PENDING(fn)                                                                                \
    void fn(struct hq_api_req *q)                                                                  \
    {                                                                                              \
        hq_api_problem(q, MHD_HTTP_NOT_IMPLEMENTED, "internal", "route: not implemented yet");     \
    }
PENDING(hq_api_event_types)
PENDING(hq_api_events_post)
PENDING(hq_api_event_attempts)
PENDING(hq_api_dl_list)
PENDING(hq_api_dl_get)
PENDING(hq_api_dl_replay)
PENDING(hq_api_dl_purge)
PENDING(hq_api_stats)
