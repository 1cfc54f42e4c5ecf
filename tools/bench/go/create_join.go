package main

import (
	"sync"
	"time"
)

// create_join [N=10000]: spawn N goroutines in batches of 64, wait for each
// batch with a WaitGroup.  Each goroutine stores index+1; the sum is checked.
func init() {
	register("create_join", func(j *jsonLine, args []string) bool {
		n := argInt(args, 0, 10000)
		const batch = 64
		var res [batch]int64
		var sum int64
		t0 := time.Now()
		for done := int64(0); done < n; {
			b := n - done
			if b > batch {
				b = batch
			}
			var wg sync.WaitGroup
			wg.Add(int(b))
			for i := int64(0); i < b; i++ {
				go func(slot, v int64) {
					res[slot] = v + 1
					wg.Done()
				}(i, done+i)
			}
			wg.Wait()
			for i := int64(0); i < b; i++ {
				sum += res[i]
			}
			done += b
		}
		el := nsSince(t0)
		j.Int("n", n)
		j.Int("batch", batch)
		j.Dbl("ns_per_op", el/float64(n))
		j.Dbl("wall_ms", el/1e6)
		j.Int("checksum", sum)
		return sum == n*(n+1)/2
	})
}
