#!/usr/bin/perl
# The default file cache (no open_file_cache directive): files are kept per
# worker and invalidated through inotify, so the first request after any
# change already sees the new state (no sleeping, no validity period):
# rewritten in place, replaced by rename, deleted, chmod'ed, created where a
# 404 was answered, its directory or an ancestor renamed; large files (kept
# as descriptors) too; written through another hard link. Files reached
# through symlinks are not cached, and a change of their target is seen.
use strict;
use warnings;
use Test::More;
use Test::Portico qw(need_bin);
use File::Path qw(make_path);
use IO::Socket::INET;

need_bin();

# as root, workers run as nobody, so permissions apply to them
my $unprivileged = $> != 0 || defined getpwnam('nobody');
my $s = Test::Portico->new(main => $> == 0 && $unprivileged ? 'user nobody;' : '');
my $dir = $s->dir;
$s->write_file("html/$_.txt", "$_ v1\n") for qw(a b c d e);
$s->write_file('html/sub/f.txt', "f in sub\n");
$s->write_file('html/deep/x/y/g.txt', "g deep\n");
$s->write_file('html/big.bin', 'B' x 100_000);
$s->write_file('other/target.txt', "target v1\n");
chmod 0755, "$dir/other";
symlink "$dir/other/target.txt", "$dir/html/link.txt" or die "symlink: $!";
symlink "$dir/other", "$dir/html/linkdir" or die "symlink: $!";
$s->write_file('html/hard.txt', "hard v1\n");
link "$dir/html/hard.txt", "$dir/other/hard2.txt" or die "link: $!";
$s->conf(<<'CONF');
    server {
        listen 127.0.0.1:%%PORT%%;
        root %%ROOT%%/html;
        location /off/ { open_file_cache off; alias %%ROOT%%/html/; }
    }
CONF
$s->start;

sub body { my $r = $s->get(shift); "$r->{status} " . ($r->{status} == 200 ? $r->{body} : '') }
sub spew {
    my ($f, $c) = @_;
    open my $fh, '>', $f or die "$f: $!";
    print $fh $c;
    close $fh;
}

# served twice, so the second answer can only come from the cache
is body('/a.txt'), "200 a v1\n", 'first request' for 1 .. 2;
my $r = $s->get('/a.txt');
my $etag = $r->{headers}{etag};

# rewritten in place: same size, and within the same second (same ETag
# from mtime and size would be allowed to match; the content must not)
spew("$dir/html/a.txt", "A V1\n");
is body('/a.txt'), "200 A V1\n", 'rewritten in place: the next request has the new content';
spew("$dir/html/a.txt", "a v2, longer\n");
$r = $s->get('/a.txt');
is "$r->{status} $r->{body}", "200 a v2, longer\n", 'rewritten again';
isnt $r->{headers}{etag}, $etag, '... with a new ETag';
is $s->get('/a.txt', 'If-None-Match' => $etag)->{status}, 200, 'the old ETag no longer matches';

# on one keep-alive connection, the change made between two requests (the
# connection's socket may already be queued ahead of the inotify event in
# the worker's event loop: the lookup itself reads the queue)
{
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $s->port) or die;
    my $ask = sub {
        print $sock "GET /ka.txt HTTP/1.1\r\nHost: x\r\n\r\n";
        my $in = '';
        until ($in =~ /\r\n\r\n/ && length($in) >= $-[0] + 4 + ($in =~ /Content-Length: (\d+)/i)[0]) {
            sysread($sock, $in, 65536, length $in) or last;
        }
        return $in =~ /\r\n\r\n(.*)\z/s ? $1 : '';
    };
    for my $v (1 .. 20) {
        spew("$dir/html/ka.txt", "ka v$v\n");
        is $ask->(), "ka v$v\n", "keep-alive, version $v: the first request after the write sees it"
            for 1 .. 2;
    }
    close $sock;
}

# replaced by rename (a new inode), as deploy tools do
is body('/b.txt'), "200 b v1\n", 'cached';
spew("$dir/html/b.txt.new", "b v2\n");
rename "$dir/html/b.txt.new", "$dir/html/b.txt" or die;
is body('/b.txt'), "200 b v2\n", 'replaced by rename: new content at once';

# deleted
is body('/c.txt'), "200 c v1\n", 'cached';
unlink "$dir/html/c.txt" or die;
is $s->get('/c.txt')->{status}, 404, 'deleted: 404 at once';

# made unreadable
SKIP: {
    skip 'chmod 000 does not stop a root worker', 2 unless $unprivileged;
    is body('/d.txt'), "200 d v1\n", 'cached';
    chmod 0000, "$dir/html/d.txt";
    is $s->get('/d.txt')->{status}, 403, "chmod 000: 403 at once";
    chmod 0644, "$dir/html/d.txt";
}
is body('/d.txt'), "200 d v1\n", 'readable again: 200 at once';

# a 404 (cached as an absence) then the file appears, by create and by rename
is $s->get('/new.txt')->{status}, 404, 'missing' for 1 .. 2;
spew("$dir/html/new.txt", "new\n");
is body('/new.txt'), "200 new\n", 'created where a 404 was answered: served at once';
is $s->get('/new2.txt')->{status}, 404, 'missing';
spew("$dir/other/new2.tmp", "new2\n");
rename "$dir/other/new2.tmp", "$dir/html/new2.txt" or die;
is body('/new2.txt'), "200 new2\n", 'moved in where a 404 was answered: served at once';

# the parent directory renamed away, another put in its place
is body('/sub/f.txt'), "200 f in sub\n", 'cached';
rename "$dir/html/sub", "$dir/html/sub.old" or die;
is $s->get('/sub/f.txt')->{status}, 404, 'parent directory renamed: 404 at once';
is body('/sub.old/f.txt'), "200 f in sub\n", '... served under its new name';
make_path("$dir/html/sub");
spew("$dir/html/sub/f.txt", "f in new sub\n");
is body('/sub/f.txt'), "200 f in new sub\n", 'a new directory under the old name: its file';

# an ancestor (not the parent) renamed and replaced
is body('/deep/x/y/g.txt'), "200 g deep\n", 'cached';
rename "$dir/html/deep", "$dir/html/deep.old" or die;
is $s->get('/deep/x/y/g.txt')->{status}, 404, 'ancestor renamed: 404 at once';
make_path("$dir/html/deep/x/y");
spew("$dir/html/deep/x/y/g.txt", "g new\n");
is body('/deep/x/y/g.txt'), "200 g new\n", 'ancestor replaced: new content at once';
if ($unprivileged) {
    chmod 0000, "$dir/html/deep";
    is $s->get('/deep/x/y/g.txt')->{status}, 403, 'ancestor made unsearchable: 403 at once';
    chmod 0755, "$dir/html/deep";
}
is body('/deep/x/y/g.txt'), "200 g new\n", 'searchable again';

# a large file is kept as a descriptor, not read whole: in-place change,
# ranges and HEAD still right
is length($s->get('/big.bin')->{body}), 100_000, 'large file' for 1 .. 2;
my ($worker) = $s->worker_pids;
my $holds = sub {
    grep { (readlink($_) // '') =~ m{/html/big\.bin} } glob "/proc/$worker/fd/*";
};
ok $holds->(), 'the worker keeps the large file open between requests';
open my $fh, '+<', "$dir/html/big.bin" or die;
seek $fh, 50_000, 0;
print $fh 'Z';
close $fh;
$r = $s->get('/big.bin', Range => 'bytes=49999-50001');
is "$r->{status} $r->{body}", '206 BZB', 'large file changed in place: a range sees it at once';
unlink "$dir/html/big.bin" or die;
ok Test::Portico::wait_for(5, sub { !$holds->() }),
    'deleted large file: its descriptor is closed without waiting for a request';
is $s->get('/big.bin')->{status}, 404, '... and it is a 404';

# small file from the cache: HEAD, ranges, conditionals
$r = $s->http_head('/e.txt');
like $r, qr{^HTTP/1.1 200.*Content-Length: 5\r\n}s, 'HEAD of a cached file';
unlike $r, qr/\r\n\r\n./s, '... without a body';
$r = $s->get('/e.txt', Range => 'bytes=0-0,2-3');
like $r->{body}, qr{Content-Range: bytes 0-0/5\r\n\r\ne\r\n.*Content-Range: bytes 2-3/5\r\n\r\nv1}s,
    'multipart ranges from the cached body';
is $s->get('/e.txt', 'If-None-Match' => $s->get('/e.txt')->{headers}{etag})->{status}, 304,
    'conditional request on a cached file';

# symlinks: not cached, a change of the target is seen
is body('/link.txt'), "200 target v1\n", 'through a symlink';
spew("$dir/other/target.txt", "target v2\n");
is body('/link.txt'), "200 target v2\n", 'symlink target changed: seen at once';
is body('/linkdir/target.txt'), "200 target v2\n", 'through a symlinked directory';
spew("$dir/other/target.txt", "target v3\n");
is body('/linkdir/target.txt'), "200 target v3\n", '... changed: seen at once';

# a hard link elsewhere: writes through it are seen (the file's own watch)
is body('/hard.txt'), "200 hard v1\n", 'file with two links';
open $fh, '+<', "$dir/other/hard2.txt" or die;
print $fh 'HARD';
close $fh;
is body('/hard.txt'), "200 HARD v1\n", 'changed through the other link: seen at once';

is body('/off/e.txt'), "200 e v1\n", 'open_file_cache off in a location';
unlike $s->error_log, qr/\[(?:alert|crit|emerg)\]/, 'no alerts in the error log';
$s->stop;
done_testing;
