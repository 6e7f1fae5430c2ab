/* bench_sandbox.c — runs model-written Python with its tests, never outside
 * this sandbox (docs/benchmarks.md, "The sandbox"):
 *
 *   parent ──fork──> supervisor (own process group; unshare: new network and
 *                    PID namespaces where the kernel lets us)
 *                      └──fork──> runner (PID 1 of the new namespace): limits
 *                                 (RLIMIT_AS, FSIZE, NPROC, CPU, NOFILE, CORE),
 *                                 root drops to nobody, cwd = a scratch folder,
 *                                 stdin /dev/null, minimal environment, exec python3
 *
 * The parent enforces the wall time: it kills the runner (which takes every
 * process of its PID namespace with it) and the supervisor's process group.
 * Between fork and exec only system calls run: the parent has OpenMP threads. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "eval/bench.h"

#define NOBODY 65534

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f) {
    (void)st, (void)flag, (void)f;
    return remove(p) != 0 && errno != ENOENT ? 0 : 0;
}

static const char *find_python(const SwaxSandboxOpts *o) {
    if (o->python && *o->python) return o->python;
    const char *e = getenv("SWAX_PYTHON");
    if (e && *e) return e;
    if (access("/usr/bin/python3", X_OK) == 0) return "/usr/bin/python3";
    return "python3";
}

typedef struct {
    int32_t runner_pid; /* in the parent's namespace */
    int32_t net, pid, uid;
} Hello;

/* The supervisor and the runner: system calls only. */
static void child(const char *scratch, const char *python, int out_fd, int info_fd, const SwaxSandboxOpts *o,
                  char *const *argv, char *const *envp) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    Hello h = {0};
    int root = geteuid() == 0;
    if (unshare(CLONE_NEWNET | CLONE_NEWPID) == 0) h.net = h.pid = 1;
    else if (unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWPID) == 0) h.net = h.pid = 1, root = 0;
    else if (unshare(CLONE_NEWNET) == 0) h.net = 1;
    pid_t r = fork();
    if (r < 0) _exit(125);
    if (r == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        struct rlimit rl;
        rl.rlim_cur = rl.rlim_max = (rlim_t)o->mem_bytes;
        setrlimit(RLIMIT_AS, &rl);
        rl.rlim_cur = rl.rlim_max = (rlim_t)o->fsize_bytes;
        setrlimit(RLIMIT_FSIZE, &rl);
        rl.rlim_cur = rl.rlim_max = (rlim_t)o->nproc;
        setrlimit(RLIMIT_NPROC, &rl);
        rl.rlim_cur = rl.rlim_max = (rlim_t)(o->timeout + 2);
        setrlimit(RLIMIT_CPU, &rl);
        rl.rlim_cur = rl.rlim_max = 0;
        setrlimit(RLIMIT_CORE, &rl);
        rl.rlim_cur = rl.rlim_max = 256;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (chdir(scratch) != 0) _exit(126);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, 0);
        dup2(out_fd, 1);
        dup2(out_fd, 2);
        for (int fd = 3; fd < 1024; fd++) close(fd);
        if (root) {
            /* RLIMIT_NPROC does not bind root: run as nobody */
            if (syscall(SYS_setgroups, 0, NULL) != 0 || syscall(SYS_setgid, NOBODY) != 0 ||
                syscall(SYS_setuid, NOBODY) != 0)
                _exit(126);
        }
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        execve(python, argv, envp);
        if (!strchr(python, '/')) execvpe(python, argv, envp);
        _exit(127);
    }
    h.runner_pid = (int32_t)r;
    h.uid = root;
    if (write(info_fd, &h, sizeof h) != (ssize_t)sizeof h) _exit(125);
    int st = 0;
    while (waitpid(r, &st, 0) < 0 && errno == EINTR) {
    }
    if (write(info_fd, &st, sizeof st) != (ssize_t)sizeof st) _exit(125);
    _exit(0);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int swax_sandbox_run(const SwaxSandboxOpts *opts, const char *program, SwaxSandboxResult *res) {
    SwaxSandboxOpts o = *opts;
    if (o.timeout <= 0) o.timeout = 10;
    if (o.mem_bytes <= 0) o.mem_bytes = 2L << 30;
    if (o.fsize_bytes <= 0) o.fsize_bytes = 16L << 20;
    if (o.nproc <= 0) o.nproc = 32;
    memset(res, 0, sizeof *res);
    res->exit_code = -1;
    const char *python = find_python(&o);
    const char *tmp = getenv("TMPDIR");
    char scratch[4096], prog[4200], outp[4200];
    snprintf(scratch, sizeof scratch, "%s/swax_sandbox_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(scratch)) return swax_error(SWAX_E_IO, "sandbox: cannot make a scratch folder in %s", scratch);
    snprintf(prog, sizeof prog, "%s/main.py", scratch);
    snprintf(outp, sizeof outp, "%s.out", scratch); /* beside the scratch folder: the program cannot remove it */
    int rc = swax_write_file_atomic(prog, program, strlen(program));
    int out_fd = rc ? -1 : open(outp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (!rc && out_fd < 0) rc = swax_error(SWAX_E_IO, "sandbox: cannot create %s", outp);
    if (!rc && geteuid() == 0) {
        /* the runner works as nobody in its scratch folder */
        if (chown(scratch, NOBODY, NOBODY) != 0 || chown(prog, NOBODY, NOBODY) != 0)
            rc = swax_error(SWAX_E_IO, "sandbox: cannot hand %s to nobody", scratch);
    }
    int pipefd[2] = {-1, -1};
    if (!rc && pipe2(pipefd, O_CLOEXEC) != 0) rc = swax_error(SWAX_E_IO, "sandbox: pipe");
    char home[4200], tmpenv[4200];
    snprintf(home, sizeof home, "HOME=%s", scratch);
    snprintf(tmpenv, sizeof tmpenv, "TMPDIR=%s", scratch);
    char *argv[] = {(char *)python, "-I", "-B", "main.py", NULL};
    char *envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", home, tmpenv, "LANG=C.UTF-8", "PYTHONHASHSEED=0",
                    "PYTHONDONTWRITEBYTECODE=1", NULL};
    double t0 = swax_time_sec();
    pid_t sup = -1;
    if (!rc) {
        fflush(NULL);
        sup = fork();
        if (sup < 0) rc = swax_error(SWAX_E_IO, "sandbox: fork failed");
        if (sup == 0) {
            close(pipefd[0]);
            child(scratch, python, out_fd, pipefd[1], &o, argv, envp);
            _exit(125);
        }
    }
    if (pipefd[1] >= 0) close(pipefd[1]);
    if (out_fd >= 0) close(out_fd);
    if (!rc) {
        setpgid(sup, sup); /* also here: no race with the kill below */
        const pid_t pg = sup;
        Hello h = {0};
        int st = 0, got_h = 0, got_st = 0, sup_st = 0;
        fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
        size_t hn = 0, sn = 0;
        for (;;) {
            if (!got_h) {
                ssize_t k = read(pipefd[0], (char *)&h + hn, sizeof h - hn);
                if (k > 0 && (hn += (size_t)k) == sizeof h) got_h = 1;
            } else if (!got_st) {
                ssize_t k = read(pipefd[0], (char *)&st + sn, sizeof st - sn);
                if (k > 0 && (sn += (size_t)k) == sizeof st) got_st = 1;
            }
            pid_t w = waitpid(sup, &sup_st, WNOHANG);
            if (w == sup) {
                /* drain what the supervisor wrote before it ended */
                if (!got_h && read(pipefd[0], (char *)&h + hn, sizeof h - hn) == (ssize_t)(sizeof h - hn)) got_h = 1;
                if (got_h && !got_st && read(pipefd[0], (char *)&st + sn, sizeof st - sn) == (ssize_t)(sizeof st - sn))
                    got_st = 1;
                sup = -1;
                break;
            }
            if (swax_time_sec() - t0 > o.timeout) {
                res->timed_out = 1;
                if (got_h && h.runner_pid > 0) kill(h.runner_pid, SIGKILL);
                kill(-sup, SIGKILL);
                while (waitpid(sup, &sup_st, 0) < 0 && errno == EINTR) {
                }
                sup = -1;
                break;
            }
            sleep_ms(got_h ? 5 : 1);
        }
        /* whatever is left of its process group (a fork bomb outside a PID namespace) */
        kill(-pg, SIGKILL);
        res->seconds = swax_time_sec() - t0;
        res->net_isolated = h.net, res->pid_isolated = h.pid, res->uid_dropped = h.uid;
        if (got_st && !res->timed_out) {
            if (WIFEXITED(st)) res->exit_code = WEXITSTATUS(st);
            else if (WIFSIGNALED(st)) res->signal = WTERMSIG(st);
        }
        res->passed = got_st && !res->timed_out && WIFEXITED(st) && WEXITSTATUS(st) == 0;
        if (!got_h) rc = swax_error(SWAX_E_IO, "sandbox: the supervisor died before starting the program");
        else if (got_st && WIFEXITED(st) && WEXITSTATUS(st) == 127 && !res->timed_out)
            rc = swax_error(SWAX_E_IO, "sandbox: cannot run %s (set SWAX_PYTHON)", python);
    }
    if (pipefd[0] >= 0) close(pipefd[0]);
    /* the output's tail */
    int fd = open(outp, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        off_t end = lseek(fd, 0, SEEK_END);
        off_t from = end > (off_t)sizeof res->output - 1 ? end - (off_t)sizeof res->output + 1 : 0;
        ssize_t k = pread(fd, res->output, sizeof res->output - 1, from);
        res->output[k > 0 ? k : 0] = 0;
        close(fd);
    }
    unlink(outp);
    nftw(scratch, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    rmdir(scratch);
    return rc;
}
