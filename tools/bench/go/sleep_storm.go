package main

import (
	"sync"
	"time"
)

// sleep_storm [T=1000] [R=20]: T goroutines released together each do R
// time.Sleep(10ms), timing each.  Same definitions as ../c/sleep_storm.c:
// oversleep_us = mean(measured - 10 ms) over all sleeps.
func init() {
	register("sleep_storm", func(j *jsonLine, args []string) bool {
		nt := argInt(args, 0, 1000)
		nr := argInt(args, 1, 20)
		const sleep = 10 * time.Millisecond
		type stats struct {
			sum, max      time.Duration
			sleeps, early int64
		}
		st := make([]stats, nt)
		var ready, wg sync.WaitGroup
		start := make(chan struct{})
		ready.Add(int(nt))
		wg.Add(int(nt))
		for i := int64(0); i < nt; i++ {
			go func(s *stats) {
				ready.Done()
				<-start
				for r := int64(0); r < nr; r++ {
					a := time.Now()
					time.Sleep(sleep)
					d := time.Since(a) - sleep
					if d < 0 {
						s.early++
					}
					s.sum += d
					if d > s.max {
						s.max = d
					}
					s.sleeps++
				}
				wg.Done()
			}(&st[i])
		}
		ready.Wait()
		t0 := time.Now()
		close(start)
		wg.Wait()
		wall := time.Since(t0)
		var tot stats
		for i := range st {
			tot.sum += st[i].sum
			if st[i].max > tot.max {
				tot.max = st[i].max
			}
			tot.sleeps += st[i].sleeps
			tot.early += st[i].early
		}
		div := tot.sleeps
		if div == 0 {
			div = 1
		}
		j.Int("n", nt)
		j.Int("rounds", nr)
		j.Dbl("oversleep_us", float64(tot.sum.Nanoseconds())/float64(div)/1e3)
		j.Dbl("wall_overhead_us", float64((wall-time.Duration(nr)*sleep).Nanoseconds())/float64(nr)/1e3)
		j.Dbl("max_oversleep_us", float64(tot.max.Nanoseconds())/1e3)
		j.Dbl("wall_ms", float64(wall.Nanoseconds())/1e6)
		j.Int("early_wakeups", tot.early)
		return tot.sleeps == nt*nr && tot.early == 0
	})
}
