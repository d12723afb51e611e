module sieve

go 1.26
