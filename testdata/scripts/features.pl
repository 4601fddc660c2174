#!/usr/bin/perl
# Perl with core modules: lists, files, POSIX, processes and signals.
use strict;
use warnings;
use List::Util qw(sum max first reduce shuffle);
use File::Temp qw(tempdir);
use File::Spec;
use File::Path qw(make_path remove_tree);
use File::Find;
use POSIX qw(floor ceil strftime uname WNOHANG);
use Data::Dumper;
use Digest::MD5 qw(md5_hex);
use Time::Local qw(timegm);

$Data::Dumper::Sortkeys = 1;
$Data::Dumper::Indent = 1;

my @n = (3, 1, 4, 1, 5, 9, 2, 6);
printf "sum %d max %d first>4 %d product %d\n", sum(@n), max(@n), (first { $_ > 4 } @n), (reduce { $a * $b } @n);
print join(",", sort { $a <=> $b } @n), "\n";
my %count;
$count{$_}++ for split //, "mississippi";
print join(" ", map { "$_=$count{$_}" } sort keys %count), "\n";
print Dumper({ list => [1, 2], name => "perl", nested => { a => undef } });

my $dir = tempdir(CLEANUP => 1);
make_path(File::Spec->catdir($dir, "a", "b"));
for my $name (qw(a/one.txt a/b/two.txt three.txt)) {
	open(my $fh, ">", "$dir/$name") or die "open $name: $!";
	print $fh "file $name\n" x 3;
	close($fh);
}
my @found;
find(sub { push @found, $File::Find::name =~ s/^\Q$dir\E//r if -f }, $dir);
print join(" ", sort @found), "\n";
open(my $in, "<", "$dir/a/b/two.txt") or die;
my @lines = <$in>;
close($in);
print scalar(@lines), " lines, md5 ", md5_hex(join("", @lines)), "\n";
print "size ", -s "$dir/three.txt", "\n";
remove_tree("$dir/a");
print "removed: ", (-e "$dir/a" ? "no" : "yes"), "\n";

print floor(-2.5), " ", ceil(2.1), " ", strftime("%Y-%m-%d %H:%M:%S", gmtime(timegm(6, 5, 4, 3, 1, 2001))), "\n";
print "sysname ", (uname())[0], "\n";

my $out = `echo backticks | tr a-z A-Z`;
print "captured $out";
print "system status ", system("sh", "-c", "exit 3") >> 8, "\n";
pipe(my $r, my $w) or die;
my $pid = fork();
die "fork: $!" unless defined $pid;
if ($pid == 0) {
	close($r);
	print $w "from child $$\n" =~ s/\d+/PID/r;
	close($w);
	exit 7;
}
close($w);
print "parent read: ", scalar(<$r>);
waitpid($pid, 0);
print "child exit ", $? >> 8, "\n";

local $SIG{USR1} = sub { print "got USR1\n" };
kill 'USR1', $$;
local $SIG{ALRM} = sub { die "alarm\n" };
my $res = eval { alarm 1; select(undef, undef, undef, 5); alarm 0; "no alarm" } // $@;
print "eval: $res";

my $text = "The year 1999 and 2024, then 42.";
my @years = $text =~ /\b(\d{4})\b/g;
print "years @years\n";
(my $t = $text) =~ tr/a-z/A-Z/;
print "$t\n";
printf "%-6s|%6.2f|%x|%o|%e\n", "left", 3.14159, 255, 8, 12345.678;
print "sprintf list: ", sprintf("%s-%s", split(/,/, "a,b")), "\n";
