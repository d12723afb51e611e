module count

go 1.26
