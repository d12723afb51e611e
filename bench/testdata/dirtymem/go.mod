module dirtymem

go 1.26
