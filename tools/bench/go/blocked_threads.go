package main

import (
	"sync"
	"sync/atomic"
	"time"
)

// blocked_threads [N=10000]: N goroutines each announce themselves and block
// on a channel receive until main closes the channel.  Same keys as the C
// version: creation cost until all are blocked, RSS and page tables (VmPTE)
// per goroutine, and OS threads ("Threads:") while they are blocked.
func init() {
	register("blocked_threads", func(j *jsonLine, args []string) bool {
		n := argInt(args, 0, 10000)
		release := make(chan struct{})
		allIn := make(chan struct{})
		var arrived, passed int64
		var wg sync.WaitGroup
		wg.Add(int(n))
		rss0 := statusField("VmRSS:")
		pt0 := statusField("VmPTE:")
		t0 := time.Now()
		for i := int64(0); i < n; i++ {
			go func() {
				if atomic.AddInt64(&arrived, 1) == n {
					close(allIn)
				}
				<-release
				atomic.AddInt64(&passed, 1)
				wg.Done()
			}()
		}
		t1 := time.Now()
		<-allIn
		t2 := time.Now()
		rss1 := statusField("VmRSS:")
		pt1 := statusField("VmPTE:")
		osThreads := statusField("Threads:")
		close(release)
		wg.Wait()
		t3 := time.Now()
		fn := float64(n)
		j.Int("n", n)
		j.Int("created", n)
		j.Dbl("ns_per_thread", float64(t2.Sub(t0).Nanoseconds())/fn)
		j.Dbl("create_ns_per_thread", float64(t1.Sub(t0).Nanoseconds())/fn)
		j.Dbl("rss_kib_per_thread", float64(rss1-rss0)/fn)
		j.Dbl("pt_kib_per_thread", float64(pt1-pt0)/fn)
		j.Dbl("mem_kib_per_thread", float64(rss1-rss0+pt1-pt0)/fn)
		j.Int("rss_before_kib", rss0)
		j.Int("rss_blocked_kib", rss1)
		j.Int("pte_before_kib", pt0)
		j.Int("pte_blocked_kib", pt1)
		j.Int("os_threads", osThreads)
		j.Dbl("release_join_ms", float64(t3.Sub(t2).Nanoseconds())/1e6)
		return atomic.LoadInt64(&passed) == n && rss0 > 0 && rss1 > 0 &&
			pt0 >= 0 && pt1 >= 0
	})
}
