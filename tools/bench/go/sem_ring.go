package main

import (
	"sync"
	"time"
)

// sem_ring [LAPS=1000] [THREADS=100]: a token passed around a ring of
// goroutines, one buffered channel (capacity 1, a semaphore) per member.
func init() {
	register("sem_ring", func(j *jsonLine, args []string) bool {
		laps := argInt(args, 0, 1000)
		nt := argInt(args, 1, 100)
		sems := make([]chan struct{}, nt)
		for i := range sems {
			sems[i] = make(chan struct{}, 1)
		}
		var hops int64
		var ready, wg sync.WaitGroup
		ready.Add(int(nt))
		wg.Add(int(nt))
		for i := int64(0); i < nt; i++ {
			go func(i int64) {
				mine, next := sems[i], sems[(i+1)%nt]
				ready.Done()
				for l := int64(0); l < laps; l++ {
					<-mine
					hops++
					next <- struct{}{}
				}
				wg.Done()
			}(i)
		}
		ready.Wait()
		t0 := time.Now()
		sems[0] <- struct{}{}
		wg.Wait()
		el := nsSince(t0)
		total := laps * nt
		token := len(sems[0])
		j.Int("n", laps)
		j.Int("threads", nt)
		j.Dbl("ns_per_op", el/float64(total))
		j.Dbl("wall_ms", el/1e6)
		j.Int("hops", hops)
		return hops == total && token == 1
	})
}
