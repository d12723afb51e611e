module github.com/librahost/librahost/guest-sdk

go 1.26
