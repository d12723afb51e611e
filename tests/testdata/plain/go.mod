module plain

go 1.26
