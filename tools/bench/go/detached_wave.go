package main

import (
	"sync"
	"time"
)

// detached_wave [N=10000]: N fire-and-forget goroutines each decrement a
// countdown under a mutex and signal a sync.Cond at zero; main waits on it.
func init() {
	register("detached_wave", func(j *jsonLine, args []string) bool {
		n := argInt(args, 0, 10000)
		var mu sync.Mutex
		zero := sync.NewCond(&mu)
		countdown, ran := n, int64(0)
		t0 := time.Now()
		for i := int64(0); i < n; i++ {
			go func() {
				mu.Lock()
				ran++
				countdown--
				if countdown == 0 {
					zero.Signal()
				}
				mu.Unlock()
			}()
		}
		mu.Lock()
		for countdown > 0 {
			zero.Wait()
		}
		r, c := ran, countdown
		mu.Unlock()
		el := nsSince(t0)
		j.Int("n", n)
		j.Dbl("ns_per_op", el/float64(n))
		j.Dbl("wall_ms", el/1e6)
		j.Int("eagain_retries", 0)
		return r == n && c == 0
	})
}
