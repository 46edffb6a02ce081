/* The SSRF guard at connect time: libcurl's open-socket callback checks the
 * address actually about to be connected to (after DNS, so a name that
 * resolves or rebinds to an internal address is caught) against
 * common/netguard. A refusal is remembered in the delivery so the outcome
 * says "blocked: <why>" instead of a generic connect error. */
#include "worker/internal.h"

#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"

static curl_socket_t on_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct hq_delivery *d = arg;
    if (purpose != CURLSOCKTYPE_IPCXN)
        return CURL_SOCKET_BAD;
    const struct hq_netguard *g = d->guard;
    if (hq_netguard_check(g, &a->addr, d->blocked, sizeof(d->blocked)) != 0) {
        hq_log(HQ_LOG_WARN, "ssrf", "refused to connect for endpoint %s: %s", d->ep->id,
               d->blocked);
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

void hq__ssrf_setup(CURL *easy)
{
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    /* CURLOPT_OPENSOCKETDATA is the delivery, set per attempt. */
}
