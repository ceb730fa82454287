module sidekeybench/goproxy

go 1.19
