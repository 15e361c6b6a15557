/* The pod's sandbox process for the shim's CRI tests, as Kubernetes' pause does it: it holds
 * the pod's namespaces, reaps the orphans that reach it, and exits 0 on SIGTERM or SIGINT.
 * Built static by the tests (cc -static), so its image needs no other file. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig) {
  (void)sig;
  _exit(0);
}

static void reap(int sig) {
  (void)sig;
  while (waitpid(-1, 0, WNOHANG) > 0) {
  }
}

int main(void) {
  signal(SIGINT, quit);
  signal(SIGTERM, quit);
  signal(SIGCHLD, reap);
  for (;;) {
    pause();
  }
}
