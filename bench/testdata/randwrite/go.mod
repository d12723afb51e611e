module randwrite

go 1.26
