package main

import "time"

// cond_pingpong [N=50000]: round trips through two unbuffered channels (the
// idiomatic Go counterpart of mutex + two condvars).
func init() {
	register("cond_pingpong", func(j *jsonLine, args []string) bool {
		n := argInt(args, 0, 50000)
		ping, pong := make(chan struct{}), make(chan struct{})
		var count int64
		done := make(chan struct{})
		go func() {
			for i := int64(0); i < n; i++ {
				<-pong
				count++
				ping <- struct{}{}
			}
			close(done)
		}()
		t0 := time.Now()
		for i := int64(0); i < n; i++ {
			pong <- struct{}{}
			<-ping
		}
		el := nsSince(t0)
		<-done
		j.Int("n", n)
		j.Dbl("ns_per_op", el/float64(n))
		j.Dbl("wall_ms", el/1e6)
		return count == n
	})
}
