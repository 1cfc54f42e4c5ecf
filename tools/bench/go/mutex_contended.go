package main

import (
	"sync"
	"time"
)

// mutex_contended [K=100000] [THREADS=64]: THREADS goroutines released
// together each do K Lock/counter++/Unlock on one sync.Mutex.
func init() {
	register("mutex_contended", func(j *jsonLine, args []string) bool {
		k := argInt(args, 0, 100000)
		nt := argInt(args, 1, 64)
		var mu sync.Mutex
		var counter int64
		var ready, wg sync.WaitGroup
		start := make(chan struct{})
		ready.Add(int(nt))
		wg.Add(int(nt))
		for t := int64(0); t < nt; t++ {
			go func() {
				ready.Done()
				<-start
				for i := int64(0); i < k; i++ {
					mu.Lock()
					counter++
					mu.Unlock()
				}
				wg.Done()
			}()
		}
		ready.Wait()
		t0 := time.Now()
		close(start)
		wg.Wait()
		el := nsSince(t0)
		total := k * nt
		j.Int("n", k)
		j.Int("threads", nt)
		j.Dbl("ops_per_s", float64(total)/(el/1e9))
		j.Dbl("ns_per_op", el/float64(total))
		j.Dbl("wall_ms", el/1e6)
		j.Int("counter", counter)
		return counter == total
	})
}
