package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process: a Prosody or a saslcert component.
type proc struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{}
	outFile string
	stdin   io.WriteCloser // with withStdin
}

// procs are all the children started, so that every one is stopped however
// the run ends.
var procs struct {
	sync.Mutex
	list []*proc
}

// startProc runs bin with args in dir, its output appended to outFile. The
// child gets SIGKILL if this program dies without stopping it.
func startProc(name, dir, outFile string, env []string, withStdin bool, bin string, args ...string) (*proc, error) {
	out, err := os.OpenFile(outFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	var stdin io.WriteCloser
	if withStdin {
		if stdin, err = cmd.StdinPipe(); err != nil {
			out.Close()
			return nil, err
		}
	}
	procs.Lock()
	defer procs.Unlock()
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), outFile: outFile, stdin: stdin}
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	procs.list = append(procs.list, p)
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, then SIGKILL after 5 s, and waits for the exit.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(5 * time.Second):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// stopAll stops every child that is still running, newest first (the
// components before their Prosody).
func stopAll() {
	procs.Lock()
	list := procs.list
	procs.list = nil
	procs.Unlock()
	var wg sync.WaitGroup
	for i := len(list) - 1; i >= 0; i-- {
		p := list[i]
		if strings.HasPrefix(p.name, "component") {
			p.stop()
			continue
		}
		wg.Go(p.stop)
	}
	wg.Wait()
}

// cpuTime is the CPU time a process has used: the sum over its threads of
// the first field of /proc/<pid>/task/<tid>/schedstat (nanoseconds on the
// CPU). Without schedstat it falls back to utime+stime of /proc/<pid>/stat
// (clock ticks, 10 ms).
func cpuTime(pid int) time.Duration {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var sum time.Duration
	ok := false
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		sum += time.Duration(ns)
		ok = true
	}
	if ok {
		return sum
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// rssKiB is the resident set size of a process (VmRSS), 0 if unknown.
func rssKiB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// tailFile returns about the last n bytes of a file.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}
