package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// echo_server [C=1000] [M=20]: goroutine-per-connection echo server on
// 127.0.0.1; the C clients run in a second process (this binary re-executed
// as "echo_client ADDR C M"), exactly like ../c/echo_server.c: same
// protocol, phases, control messages and JSON keys.
func init() {
	register("echo_server", echoServer)
	register("echo_client", echoClient) // internal: the client process
}

const echoMsg = 64

// raiseNofile sets the soft RLIMIT_NOFILE to the hard limit, raising the
// hard limit to need first when it is lower and we are allowed to.
func raiseNofile(need uint64) uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		fail("getrlimit: %v", err)
	}
	if rl.Max < need {
		want := syscall.Rlimit{Cur: need, Max: need}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) == nil {
			rl = want
		}
	}
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		fail("setrlimit: %v", err)
	}
	return rl.Cur
}

// threadSampler records the peak "Threads:" every ~1 ms until stop is
// closed; the returned channel yields the peak.  When child is not nil it
// also samples /proc/<*child>/status (while *child > 0) and yields that
// peak second.
func threadSampler(stop chan struct{}, child *int64) chan [2]int64 {
	res := make(chan [2]int64, 1)
	peak := statusField("Threads:")
	var childPeak int64
	go func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				res <- [2]int64{peak, childPeak}
				return
			case <-tick.C:
				if t := statusField("Threads:"); t > peak {
					peak = t
				}
				if child != nil {
					if pid := atomic.LoadInt64(child); pid > 0 {
						t := pidStatusField(pid, "Threads:")
						if t > childPeak {
							childPeak = t
						}
					}
				}
			}
		}
	}()
	return res
}

func echoServer(j *jsonLine, args []string) bool {
	nc := argInt(args, 0, 1000)
	nm := argInt(args, 1, 20)
	need := uint64(nc + 64)
	nofile := raiseNofile(need)
	if nofile < need {
		fail("RLIMIT_NOFILE is %d, need %d (raise ulimit -n)", nofile, need)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("listen: %v", err)
	}
	stopSampler := make(chan struct{})
	var childPid int64
	peakCh := threadSampler(stopSampler, &childPid)

	var echoed int64
	var handlersReady, handlersDone sync.WaitGroup
	handlersReady.Add(int(nc))
	handlersDone.Add(int(nc))
	go func() { // acceptor
		for i := int64(0); i < nc; i++ {
			c, err := ln.Accept()
			if err != nil {
				fail("accept: %v", err)
			}
			go func(c net.Conn) { // handler
				handlersReady.Done()
				buf := make([]byte, 4096)
				for {
					r, err := c.Read(buf)
					if r > 0 {
						if _, werr := c.Write(buf[:r]); werr != nil {
							fail("server write: %v", werr)
						}
						atomic.AddInt64(&echoed, int64(r))
					}
					if err == io.EOF {
						break
					}
					if err != nil {
						fail("server read: %v", err)
					}
				}
				c.Close()
				handlersDone.Done()
			}(c)
		}
	}()

	self, err := os.Executable()
	if err != nil {
		fail("executable: %v", err)
	}
	t0 := time.Now()
	cmd := exec.Command(self, "echo_client", ln.Addr().String(),
		strconv.FormatInt(nc, 10), strconv.FormatInt(nm, 10))
	cmd.Stderr = os.Stderr
	toChild, err := cmd.StdinPipe()
	if err != nil {
		fail("pipe: %v", err)
	}
	fromChild, err := cmd.StdoutPipe()
	if err != nil {
		fail("pipe: %v", err)
	}
	if err := cmd.Start(); err != nil {
		fail("start client: %v", err)
	}
	atomic.StoreInt64(&childPid, int64(cmd.Process.Pid))
	ctl := bufio.NewReader(fromChild)
	line, err := ctl.ReadString('\n')
	if err != nil {
		fail("client process died before connecting")
	}
	if line != "ready\n" {
		fail("client failed: %s", strings.TrimSpace(line))
	}
	handlersReady.Wait()
	t1 := time.Now()
	if _, err := toChild.Write([]byte("G")); err != nil {
		fail("write to client: %v", err)
	}
	line, err = ctl.ReadString('\n')
	if err != nil && line == "" {
		fail("client process died during the message phase")
	}
	t2 := time.Now()
	handlersDone.Wait()
	atomic.StoreInt64(&childPid, 0) // it is done: stop before it is reaped
	werr := cmd.Wait()
	t3 := time.Now()
	close(stopSampler)
	peaks := <-peakCh
	peak := peaks[0]
	ln.Close()

	var res struct {
		OK      bool  `json:"ok"`
		MsgsOK  int64 `json:"msgs_ok"`
		MsgsBad int64 `json:"msgs_bad"`
		MsgsNs  int64 `json:"msgs_ns"`
		Peak    int64 `json:"peak_os_threads"`
	}
	if err := json.Unmarshal([]byte(line), &res); err != nil || !res.OK {
		fail("client failed: %s", strings.TrimSpace(line))
	}
	total := nc * nm
	el := float64(res.MsgsNs)
	j.Int("n", nc)
	j.Int("msgs_per_conn", nm)
	j.Dbl("msgs_per_s", float64(total)/(el/1e9))
	j.Dbl("ns_per_msg", el/float64(total))
	j.Dbl("us_per_msg", el/1e3/float64(total))
	j.Dbl("connect_ms", float64(t1.Sub(t0).Nanoseconds())/1e6)
	j.Dbl("msgs_ms", el/1e6)
	j.Dbl("finish_ms", float64(t3.Sub(t2).Nanoseconds())/1e6)
	j.Int("peak_os_threads", peak)
	clientPeak := res.Peak
	if peaks[1] > clientPeak {
		clientPeak = peaks[1]
	}
	j.Int("client_peak_os_threads", clientPeak)
	j.Int("client_self_peak_os_threads", res.Peak)
	j.Int("client_ext_peak_os_threads", peaks[1])
	j.Int("nofile_limit", int64(nofile))
	j.Int("msgs_ok", res.MsgsOK)
	j.Int("msgs_bad", res.MsgsBad)
	return res.MsgsOK == total && res.MsgsBad == 0 &&
		atomic.LoadInt64(&echoed) == total*echoMsg && werr == nil && el > 0
}

// echoClient: echo_client ADDR C M, control on stdin/stdout.
func echoClient(j *jsonLine, args []string) bool {
	if len(args) < 1 {
		fail("usage: echo_client ADDR C M")
	}
	addr := args[0]
	nc := argInt(args, 1, 1)
	nm := argInt(args, 2, 1)
	need := uint64(nc + 64)
	if nofile := raiseNofile(need); nofile < need {
		fail("client: RLIMIT_NOFILE is %d, need %d", nofile, need)
	}
	stopSampler := make(chan struct{})
	peakCh := threadSampler(stopSampler, nil)
	var msgsOK, msgsBad int64
	var ready, done sync.WaitGroup
	ready.Add(int(nc))
	done.Add(int(nc))
	start := make(chan struct{})
	for i := int64(0); i < nc; i++ {
		go func(id int64) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				fail("dial: %v", err)
			}
			ready.Done()
			<-start
			out, in := make([]byte, echoMsg), make([]byte, echoMsg)
			var ok, bad int64
			for m := int64(0); m < nm; m++ {
				fillMsg(out, id, m)
				if _, err := c.Write(out); err != nil {
					fail("client write: %v", err)
				}
				if _, err := io.ReadFull(c, in); err != nil {
					fail("client read: %v", err)
				}
				if bytes.Equal(in, out) {
					ok++
				} else {
					bad++
				}
			}
			atomic.AddInt64(&msgsOK, ok)
			atomic.AddInt64(&msgsBad, bad)
			c.Close()
			done.Done()
		}(i)
	}
	ready.Wait()
	os.Stdout.WriteString("ready\n")
	b := make([]byte, 1)
	if _, err := io.ReadFull(os.Stdin, b); err != nil || b[0] != 'G' {
		fail("client: no go signal from the server")
	}
	t1 := time.Now()
	close(start)
	done.Wait()
	el := time.Since(t1)
	close(stopSampler)
	j.Int("msgs_ok", msgsOK)
	j.Int("msgs_bad", msgsBad)
	j.Int("msgs_ns", el.Nanoseconds())
	j.Int("peak_os_threads", (<-peakCh)[0])
	return msgsOK == nc*nm && msgsBad == 0
}

// fillMsg: the same deterministic 64-byte pattern as the C version.
func fillMsg(m []byte, client, idx int64) {
	x := uint64(client)*1000003 + uint64(idx)*7919 + 1
	for i := range m {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		m[i] = byte(x)
	}
}
