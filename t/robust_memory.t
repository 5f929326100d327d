#!/usr/bin/perl
# Issue 8, memory: a worker serving a bounded mix of request kinds (static
# file, return, FastCGI through a keep-alive pool, proxy through a keep-alive
# pool, gzip, 404s, HTTP/1.0 and keep-alive) must not grow: its RSS after
# the whole run stays within 10 % of the level after the first warm-up round
# (allocator caches filled), plus a small fixed slack for page granularity.
# Also, during the run the logs are reopened (USR1) and the server reloaded:
# no request fails. Figures are printed with diag.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time);
use Test::Portico qw(need_bin wait_for);
use Test::Portico::Peers qw(find_tool);

need_bin();
my $wrk = find_tool('wrk') or plan skip_all => 'wrk not installed';

my $s = Test::Portico->new(worker_processes => 1);
my $build = $ENV{PORTICO_BUILD} || 'build';
-x "$build/peers/http_hello" or plan skip_all => 'build/peers/http_hello missing';
my $fcgi = Test::Portico::Peers->fcgi_hello($s, name => 'mem_fcgi');
my $hport = Test::Portico::free_port($s->port);
my $http = Test::Portico::Peers->spawn(
    cmd => [ "$build/peers/http_hello", '-l', "127.0.0.1:$hport" ],
    log => $s->dir . '/http_hello.log', addr => "127.0.0.1:$hport", name => 'http_hello',
);
$s->write_file('html/1k.txt', 'x' x 1024);
$s->write_file('html/page.html', "<p>" . ('hello portico ' x 400) . "</p>\n");
my ($F, $H) = ($fcgi->addr, $http->addr);
$s->conf(<<"CONF");
    upstream fcgi { server $F; keepalive 8; }
    upstream web { server $H; keepalive 8; }
    gzip on;
    server {
        listen 127.0.0.1:%%PORT%%;
        root %%ROOT%%/html;
        location = /r { return 200 "ok\\n"; }
        location /f { fastcgi_pass fcgi; fastcgi_keep_conn on; include %%CONF%%/fastcgi.conf; }
        location /p { proxy_pass http://web; }
    }
CONF
$s->start;
my ($worker) = @{ $s->wait_workers(1) || [] };
ok $worker, 'one worker';

my $lua = $s->dir . '/mix.lua';
open my $fh, '>', $lua or die;
print $fh <<'LUA';
local paths = {"/1k.txt", "/r", "/f", "/p", "/page.html", "/missing", "/1k.txt", "/r"}
local i = 0
request = function()
  i = i + 1
  local p = paths[(i % #paths) + 1]
  local h = {}
  if i % 3 == 0 then h["Accept-Encoding"] = "gzip" end
  return wrk.format("GET", p, h)
end
LUA
close $fh;

sub rss_kb {
    my $pid = shift;
    open my $st, '<', "/proc/$pid/status" or return 0;
    while (<$st>) { return $1 if /^VmRSS:\s+(\d+)/ }
    return 0;
}
sub load {
    my ($secs) = @_;
    my $out = `$wrk -t1 -c32 -d${secs}s -s $lua http://127.0.0.1:@{[$s->port]}/ 2>&1`;
    my ($n) = $out =~ /(\d+) requests in/;
    my ($errs) = $out =~ /Socket errors: (.*)/;
    return ($n // 0, $errs // '', $out);
}

my ($warm) = load(3);
my $base = rss_kb($worker);
diag "warm-up: $warm requests, worker RSS $base kB";
my $total = $warm;
my $errors = '';
# the issue's figure is 1 M requests: PORTICO_MEMORY_REQUESTS=1000000 runs
# that long; make test runs a bounded ~150 k (three or more 4 s rounds)
my $target = $ENV{PORTICO_MEMORY_REQUESTS} // 100_000;
my $deadline = time + ($target > 200_000 ? 600 : 30);
my $rounds = 0;
while (($rounds < 3 || $total < $target) && time < $deadline) {
    my ($n, $e) = load(4);
    $total += $n;
    $errors .= $e;
    $rounds++;
}
my $after = rss_kb($worker);
my $growth = $base ? 100 * ($after - $base) / $base : 0;
diag sprintf "after %d requests: worker RSS %d kB (%+.1f %%)", $total, $after, $growth;
ok $total > 10_000, "a real load ran ($total requests)";
is $errors, '', 'no socket errors';
SKIP: {
    # ASan's quarantine holds freed memory on purpose: RSS growth is expected
    skip 'sanitizer build: RSS is not meaningful', 1 if $ENV{PORTICO_SANITIZER_DIR};
    cmp_ok $after, '<=', $base * 1.10 + 1024, 'worker RSS within 10 % (+1 MiB slack) of the warm level';
}

# log reopen and reload under the same load: zero failed requests
my $pid = fork // die;
if (!$pid) {
    my ($n, $e, $out) = load(6);
    my ($non2xx) = $out =~ /Non-2xx or 3xx responses: (\d+)/;
    # the mix has a deliberate 404: count only socket errors as failures
    open my $o, '>', $s->dir . '/wrk.out' or die;
    print $o "$n\n$e\n";
    close $o;
    exit 0;
}
sleep 1;
rename $s->dir . '/logs/access.log', $s->dir . '/logs/access.log.1';
$s->signal('USR1');
sleep 1;
ok $s->reload, 'reload under load';
sleep 1;
$s->signal('USR1');
waitpid $pid, 0;
open my $o, '<', $s->dir . '/wrk.out' or die;
my ($n2, $e2) = map { chomp; $_ } <$o>;
ok $n2 > 1000, "load during reopen and reload ($n2 requests)";
is $e2 // '', '', 'no failed request during log reopen and reload';
ok wait_for(5, sub { -s $s->dir . '/logs/access.log' }), 'the reopened access log is written';
# the mix's 404s: thousands a second, each an open() failure worth a line
my $cl = $s->client_log_ok(name => '404 lines');
ok $cl->{dropped_summaries} > 0, 'what the rate limit dropped is counted in the log';

done_testing;
