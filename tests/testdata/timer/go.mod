module timer

go 1.26
