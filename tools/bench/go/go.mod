module vthreadbench

go 1.19
