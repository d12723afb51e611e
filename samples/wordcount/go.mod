module wordcount

go 1.26
