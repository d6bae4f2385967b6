/*
 * pause: the process that holds a pod's namespaces open (the image oaas-lab builds as "pause").
 *
 * It runs as PID 1 of the pod sandbox, so it also reaps every orphan that is re-parented to
 * it (a shared PID namespace makes it the init of the pod). SIGINT and SIGTERM end it with
 * status 0, which is what the kubelet expects when it stops a sandbox. Built with
 * `gcc -Os -static -s`: the image holds this one file and nothing else.
 */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig)
{
    (void)sig;
    _exit(0);
}

static void reap(int sig)
{
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(void)
{
    struct sigaction on_stop = {0};
    struct sigaction on_child = {0};

    if (getpid() != 1) {
        /* Still useful outside a sandbox (tests), but say why reaping may not happen. */
        static const char note[] = "pause: not PID 1; orphans are not re-parented to me\n";
        (void)!write(2, note, sizeof note - 1);
    }
    on_stop.sa_handler = stop;
    sigemptyset(&on_stop.sa_mask);
    if (sigaction(SIGINT, &on_stop, NULL) != 0 || sigaction(SIGTERM, &on_stop, NULL) != 0) {
        return 1;
    }
    on_child.sa_handler = reap;
    on_child.sa_flags = SA_NOCLDSTOP | SA_RESTART;
    sigemptyset(&on_child.sa_mask);
    if (sigaction(SIGCHLD, &on_child, NULL) != 0) {
        return 1;
    }
    for (;;) {
        pause();
    }
    return 2; /* not reached */
}
