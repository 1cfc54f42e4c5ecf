package main

import (
	"runtime"
	"sync"
	"time"
)

// forkjoin_cpu [ROUNDS=30] [DIM=256]: the same uint32 matrix multiply as
// ../c/forkjoin_cpu.c, rows split across 2*NumCPU goroutines per round,
// checksum of every round compared with a serial reference.
func init() {
	register("forkjoin_cpu", func(j *jsonLine, args []string) bool {
		rounds := argInt(args, 0, 30)
		dim := int(argInt(args, 1, 256))
		p := 2 * runtime.NumCPU()
		a := make([]uint32, dim*dim)
		b := make([]uint32, dim*dim)
		c := make([]uint32, dim*dim)
		ref := make([]uint32, dim*dim)
		for i := range a {
			a[i] = uint32(i)*2654435761 + 1
			b[i] = uint32(i)*40503 + 7
		}
		mult := func(out []uint32, lo, hi int) {
			for i := lo; i < hi; i++ {
				crow := out[i*dim : (i+1)*dim]
				for k := 0; k < dim; k++ {
					av := a[i*dim+k]
					brow := b[k*dim : (k+1)*dim]
					for jj := range crow {
						crow[jj] += av * brow[jj]
					}
				}
			}
		}
		checksum := func(m []uint32) uint64 {
			var s uint64
			for _, v := range m {
				s = s*31 + uint64(v)
			}
			return s
		}
		mult(ref, 0, dim)
		want := checksum(ref)
		var bad int64
		t0 := time.Now()
		for r := int64(0); r < rounds; r++ {
			for i := range c {
				c[i] = 0
			}
			var wg sync.WaitGroup
			wg.Add(p)
			for t := 0; t < p; t++ {
				go func(lo, hi int) {
					mult(c, lo, hi)
					wg.Done()
				}(dim*t/p, dim*(t+1)/p)
			}
			wg.Wait()
			if checksum(c) != want {
				bad++
			}
		}
		el := nsSince(t0)
		j.Int("n", rounds)
		j.Int("dim", int64(dim))
		j.Int("threads", int64(p))
		j.Dbl("wall_ms", el/1e6)
		j.Dbl("ms_per_round", el/1e6/float64(rounds))
		j.Int("bad_rounds", bad)
		return bad == 0
	})
}
