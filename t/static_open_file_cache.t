#!/usr/bin/perl
# open_file_cache / open_file_cache_valid (nginx's directives) in the static
# module: a cached file is served with its validators; a file replaced
# (renamed over), rewritten in place or deleted is seen after the validity
# period; config errors are refused.
use strict;
use warnings;
use Test::More;
use Test::Portico qw(need_bin);
use Time::HiRes qw(sleep);

need_bin();

my $s = Test::Portico->new;
$s->write_file('html/a.txt', "first version\n");
$s->write_file('html/b.txt', "bee\n");
$s->write_file('html/gone.txt', "soon gone\n");
$s->conf(<<'CONF');
    server {
        listen 127.0.0.1:%%PORT%%;
        root %%ROOT%%/html;
        open_file_cache max=2 inactive=20s;
        open_file_cache_valid 1s;
        location /off/ { open_file_cache off; alias %%ROOT%%/html/; }
    }
CONF
$s->start;
my $dir = $s->dir;

my $r = $s->get('/a.txt');
is "$r->{status} $r->{body}", "200 first version\n", 'first request opens and caches';
ok $r->{headers}{etag} && $r->{headers}{'last-modified'}, '... with ETag and Last-Modified';
my $etag1 = $r->{headers}{etag};
is $s->get('/a.txt', 'If-None-Match' => $etag1)->{status}, 304, 'cached validators answer 304';

# replace the file (a new inode, as deploy tools do) with a different size
$s->write_file('html/a.txt.new', "second version, longer\n");
rename "$dir/html/a.txt.new", "$dir/html/a.txt" or die "rename: $!";
sleep 1.3;
$r = $s->get('/a.txt');
is "$r->{status} $r->{body}", "200 second version, longer\n", 'replaced file served after open_file_cache_valid';
isnt $r->{headers}{etag}, $etag1, '... with a new ETag';

# rewritten in place, same size, another mtime
open my $fh, '+<', "$dir/html/a.txt" or die;
print $fh "SECOND version, longer\n";
close $fh;
utime time + 5, time + 5, "$dir/html/a.txt";
sleep 1.3;
is $s->get('/a.txt')->{body}, "SECOND version, longer\n", 'file rewritten in place: new content';

# deleted: 404 once the entry is revalidated
is $s->get('/gone.txt')->{status}, 200, 'cached';
unlink "$dir/html/gone.txt";
sleep 1.3;
is $s->get('/gone.txt')->{status}, 404, 'deleted file: 404 after the validity period';

# more files than max: the least recently used is closed, all still served
is $s->get("/$_")->{status}, 200, "max=2: /$_" for qw(a.txt b.txt a.txt b.txt);
is $s->get('/off/b.txt')->{body}, "bee\n", 'open_file_cache off in a location';
is $s->get('/missing.txt')->{status}, 404, 'a missing file is a 404 (errors are not cached)';
$s->write_file('html/missing.txt', "now here\n");
is $s->get('/missing.txt')->{body}, "now here\n", '... and served as soon as it exists';
$s->stop;

for my $bad ('open_file_cache max=0;', 'open_file_cache inactive=10s;', 'open_file_cache max=x;',
    'open_file_cache max=10 bogus=1;') {
    my $t = Test::Portico->new;
    $t->conf("    $bad\n    server { listen 127.0.0.1:%%PORT%%; }\n");
    my ($rc, $out) = $t->test_config;
    ok $rc != 0 && $out =~ /open_file_cache/, "refused: $bad";
}

done_testing;
