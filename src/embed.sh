#!/bin/sh
# embed.sh -- turn a text file into a C string constant: embed.sh NAME FILE
name=$1
file=$2
echo "/* Generated from $(basename "$file") by embed.sh: do not edit. */"
echo "static const char ${name}[] ="
sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/\t"/' -e 's/$/\\n"/' "$file"
echo ";"
