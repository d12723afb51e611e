module heat

go 1.26
