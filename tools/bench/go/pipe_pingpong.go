package main

import (
	"io"
	"os"
	"time"
)

// pipe_pingpong [N=50000]: one byte back and forth through two os.Pipe()s
// (Go puts pipe fds in non-blocking mode behind its netpoller).
func init() {
	register("pipe_pingpong", func(j *jsonLine, args []string) bool {
		n := argInt(args, 0, 50000)
		ar, aw, err := os.Pipe()
		if err != nil {
			fail("pipe: %v", err)
		}
		br, bw, err := os.Pipe()
		if err != nil {
			fail("pipe: %v", err)
		}
		done := make(chan struct{})
		go func() {
			b := make([]byte, 1)
			for i := int64(0); i < n; i++ {
				if _, err := io.ReadFull(ar, b); err != nil {
					fail("read: %v", err)
				}
				b[0]++
				if _, err := bw.Write(b); err != nil {
					fail("write: %v", err)
				}
			}
			close(done)
		}()
		out, in := make([]byte, 1), make([]byte, 1)
		var bad int64
		t0 := time.Now()
		for i := int64(0); i < n; i++ {
			out[0] = byte(i)
			if _, err := aw.Write(out); err != nil {
				fail("write: %v", err)
			}
			if _, err := io.ReadFull(br, in); err != nil {
				fail("read: %v", err)
			}
			if in[0] != out[0]+1 {
				bad++
			}
		}
		el := nsSince(t0)
		<-done
		j.Int("n", n)
		j.Dbl("ns_per_op", el/float64(n))
		j.Dbl("wall_ms", el/1e6)
		j.Int("bad_bytes", bad)
		return bad == 0
	})
}
