package Test::Portico::Peers;

# Backends for the gateway tests: PHP-FPM pools, the Go net/http/fcgi
# responder (built by the test), build/peers/fcgi_hello, and small fault
# peers written in Perl. Each one lives in the test's temp dir, listens on
# loopback or a unix socket there, and is stopped by the PID this module
# forked (never by name). Every wait is bounded.

use strict;
use warnings;

use Exporter qw(import);
use File::Path qw(make_path);
use IO::Select;
use IO::Socket::INET;
use IO::Socket::UNIX;
use Socket qw(SOCK_STREAM);
use POSIX qw(WNOHANG);
use Scalar::Util qw(weaken);
use Time::HiRes qw(time sleep);
use Test::Portico qw(free_port repo_dir wait_for);

our @EXPORT_OK = qw(find_tool need_tool wait_socket can_connect);

my %LIVE;    # "$peer" => weak ref
my $OWNER = $$;

# ---------------------------------------------------------------- tools

sub find_tool {
    my (@names) = @_;
    for my $n (@names) {
        return $n if $n =~ m{/} && -x $n;
        for my $d (split /:/, ($ENV{PATH} // '') . ':/usr/sbin:/usr/local/sbin:/sbin') {
            return "$d/$n" if $d ne '' && -x "$d/$n";
        }
    }
    return undef;
}

# The path of the first tool found, or skip the whole test file with a reason.
sub need_tool {
    my ($why, @names) = @_;
    my $t = find_tool(@names);
    return $t if $t;
    require Test::More;
    Test::More::plan(skip_all => "$why: none of @names found (scripts/deps installs it)");
}

# ---------------------------------------------------------------- sockets

# "unix:/path" or "host:port"
sub can_connect {
    my ($addr) = @_;
    my $c;
    if ($addr =~ /^unix:(.*)$/) {
        $c = IO::Socket::UNIX->new(Peer => $1, Type => SOCK_STREAM);
    } else {
        my ($h, $p) = $addr =~ /^(.*):(\d+)$/ or return 0;
        $c = IO::Socket::INET->new(PeerAddr => $h, PeerPort => $p, Proto => 'tcp', Timeout => 1);
    }
    return 0 unless $c;
    close $c;
    return 1;
}

sub wait_socket {
    my ($addr, $timeout) = @_;
    return wait_for($timeout // 10, sub { can_connect($addr) });
}

# ---------------------------------------------------------------- processes

# Forks and execs @cmd with stdout+stderr appended to $log.
sub spawn {
    my ($class, %o) = @_;
    my @cmd = @{ $o{cmd} };
    my $log = $o{log} // '/dev/null';
    my $pid = fork // die "Peers: fork: $!";
    if ($pid == 0) {
        %ENV = (%ENV, %{ $o{env} || {} });
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT;
        exec { $cmd[0] } @cmd or do { print STDERR "exec $cmd[0]: $!\n"; POSIX::_exit(127) };
    }
    my $self = bless { pid => $pid, log => $log, addr => $o{addr}, name => $o{name} // $cmd[0], %{ $o{extra} || {} } }, $class;
    $LIVE{"$self"} = $self;
    weaken($LIVE{"$self"});
    if (defined $o{addr}) {
        my $ok = wait_for($o{timeout} // 10, sub {
            return -1 if waitpid($pid, WNOHANG) == $pid;
            can_connect($o{addr});
        });
        if (!$ok || $ok == -1) {
            my $tail = _slurp($log);
            $self->{pid} = undef if $ok && $ok == -1;
            $self->stop;
            die "Peers: $self->{name} not listening on $o{addr}\n$tail";
        }
    }
    return $self;
}

sub _slurp {
    my $f = shift;
    open my $fh, '<', $f or return '';
    local $/;
    my $c = <$fh> // '';
    return length $c > 4000 ? substr($c, -4000) : $c;
}

sub pid  { $_[0]{pid} }
sub addr { $_[0]{addr} }
sub log_text { _slurp($_[0]{log}) }

sub alive {
    my $self = shift;
    return 0 unless $self->{pid};
    return 0 if waitpid($self->{pid}, WNOHANG) == $self->{pid};
    return Test::Portico::pid_alive($self->{pid});
}

# TERM (or $sig), up to 5 s, then KILL. Only the PID this object forked.
sub stop {
    my ($self, $sig) = @_;
    my $pid = $self->{pid} or return;
    return if $$ != $OWNER;
    local ($?, $!, $@);
    kill $sig // 'TERM', $pid;
    my $done = wait_for(5, sub { my $r = waitpid($pid, WNOHANG); $r == $pid || $r == -1 });
    if (!$done) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
    delete $self->{pid};
    delete $LIVE{"$self"};
}

sub DESTROY { my $self = shift; $self->stop if $self->{pid} }

END {
    local $?;
    for my $p (grep { defined } values %LIVE) { $p->stop }
}

# ---------------------------------------------------------------- PHP-FPM

# A static pool of `children` workers on `listen` ('unix' → a socket in the
# temp dir, 'tcp' → 127.0.0.1:<free port>). Returns a peer with ->addr
# ("unix:/path" or "127.0.0.1:port", ready for fastcgi_pass) and
# ->access_log (one line per request PHP-FPM served).
sub php_fpm {
    my ($class, $s, %o) = @_;
    my $bin = find_tool('php-fpm8.2', 'php-fpm') or die "Peers: php-fpm not found";
    my $name = $o{name} // 'fpm';
    my $dir = $s->dir . "/$name";
    make_path($dir, { mode => 0755 });
    my ($listen, $addr);
    if (($o{listen} // 'unix') eq 'unix') {
        $listen = "$dir/php.sock";
        $addr = "unix:$listen";
    } else {
        my $port = $o{port} // free_port();
        $listen = "127.0.0.1:$port";
        $addr = $listen;
    }
    my $children = $o{children} // 2;
    my $extra = $o{pool_extra} // '';
    # -n: no php.ini, so the host's settings cannot change what we test;
    # the limits a 10 MiB upload needs are set here instead
    open my $fh, '>', "$dir/pool.conf" or die "Peers: $dir/pool.conf: $!";
    print {$fh} <<"POOL";
[global]
error_log = $dir/fpm-error.log
daemonize = no
pid = $dir/fpm.pid

[www]
listen = $listen
listen.mode = 0666
pm = static
pm.max_children = $children
clear_env = no
access.log = $dir/access.log
access.format = "%m %r%Q%q %s"
catch_workers_output = yes
decorate_workers_output = no
php_admin_value[post_max_size] = 64M
php_admin_value[upload_max_filesize] = 64M
php_admin_value[memory_limit] = 256M
php_admin_value[upload_tmp_dir] = $dir
php_admin_value[output_buffering] = 0
php_admin_flag[log_errors] = on
php_admin_flag[display_errors] = off
$extra
POOL
    close $fh;
    my $p = $class->spawn(
        cmd => [ $bin, '-n', '-R', '-F', '-y', "$dir/pool.conf" ],
        log => "$dir/stderr.log", addr => $addr, name => 'php-fpm',
        extra => { access_log_file => "$dir/access.log", dir => $dir },
    );
    return $p;
}

sub access_log { _slurp($_[0]{access_log_file}) }

# ---------------------------------------------------------------- Go responder

# Builds t/peers/fcgi_app.go into the temp dir (stdlib only, no network) once
# per test file; returns the binary's path.
my %GO_BUILT;
sub build_go {
    my ($class, $s, $src) = @_;
    $src //= repo_dir() . '/t/peers/fcgi_app.go';
    my $go = find_tool('go') or die "Peers: go not found";
    my $dir = $s->dir . '/go';
    return $GO_BUILT{$dir} if $GO_BUILT{$dir} && -x $GO_BUILT{$dir};
    make_path("$dir/cache", "$dir/path", { mode => 0755 });
    my $out = "$dir/fcgi_app";
    local %ENV = (%ENV, GOCACHE => "$dir/cache", GOPATH => "$dir/path", GOFLAGS => '-mod=mod',
                  GOPROXY => 'off', GO111MODULE => 'off', CGO_ENABLED => '0', HOME => $dir);
    my ($rc, $text) = Test::Portico::run_bounded(180, $go, 'build', '-o', $out, $src);
    die "Peers: go build failed ($rc):\n$text" if $rc != 0 || !-x $out;
    return $GO_BUILT{$dir} = $out;
}

# The Go responder on a free loopback port (or `unix => path`); it writes
# its accepted-connection count to ->count_file on each accept.
sub go_app {
    my ($class, $s, %o) = @_;
    my $bin = $class->build_go($s);
    my $name = $o{name} // 'goapp';
    my $count = $s->dir . "/$name.count";
    my ($flag, $addr);
    if ($o{unix}) { ($flag, $addr) = ('-u', $o{unix}); $addr = "unix:$o{unix}" }
    else { my $port = $o{port} // free_port(); ($flag, $addr) = ('-l', "127.0.0.1:$port") }
    my $arg = $flag eq '-u' ? $o{unix} : $addr;
    return $class->spawn(
        cmd => [ $bin, $flag, $arg, '-s', $count ],
        log => $s->dir . "/$name.log", addr => $addr, name => 'fcgi_app',
        extra => { count_file => $count },
    );
}

# ---------------------------------------------------------------- fcgi_hello

sub fcgi_hello {
    my ($class, $s, %o) = @_;
    my $build = $ENV{PORTICO_BUILD} || repo_dir() . '/build';
    my $bin = "$build/peers/fcgi_hello";
    die "Peers: $bin missing (make)" unless -x $bin;
    my $name = $o{name} // 'hello';
    my $count = $s->dir . "/$name.count";
    my $port = $o{port} // free_port();
    return $class->spawn(
        cmd => [ $bin, '-l', "127.0.0.1:$port", '-s', $count ],
        log => $s->dir . "/$name.log", addr => "127.0.0.1:$port", name => 'fcgi_hello',
        extra => { count_file => $count },
    );
}

# Accepted connections so far (peers started with -s); 0 before the first.
sub accepted {
    my $self = shift;
    my $c = _slurp($self->{count_file} // return undef);
    return $c =~ /(\d+)/ ? $1 + 0 : 0;
}

# ---------------------------------------------------------------- Perl peers

# A forked child running $code->($listen_socket) on 127.0.0.1:port; the child
# exits when $code returns. For fault peers: garbage, resets, stalls...
sub perl_peer {
    my ($class, %o) = @_;
    my $port = $o{port} // free_port();
    my $srv = IO::Socket::INET->new(
        LocalAddr => '127.0.0.1', LocalPort => $port, Proto => 'tcp', Listen => 16, ReuseAddr => 1,
    ) or die "Peers: listen 127.0.0.1:$port: $!";
    my $pid = fork // die "Peers: fork: $!";
    if ($pid == 0) {
        $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP);
        # a peer that outlives its test (parent killed) is bounded too
        alarm($o{lifetime} // 120);
        eval { $o{code}->($srv) };
        POSIX::_exit(0);
    }
    close $srv;
    my $self = bless { pid => $pid, addr => "127.0.0.1:$port", port => $port, name => $o{name} // 'perl peer' }, $class;
    $LIVE{"$self"} = $self;
    weaken($LIVE{"$self"});
    return $self;
}

sub port { $_[0]{port} }

# Reads one FastCGI request (up to the empty STDIN record) from $c; returns
# (request id, keep_conn flag, {params}, stdin) or () on EOF/timeout.
sub read_fcgi_request {
    my ($c, $timeout) = @_;
    my $buf = '';
    my ($id, $keep, %params, $stdin, $pbuf) = (1, 0);
    $stdin = '';
    $pbuf = '';
    my $deadline = time + ($timeout // 10);
    my $sel = IO::Select->new($c);
    while (time < $deadline) {
        while (length $buf >= 8) {
            my ($ver, $type, $rid, $clen, $plen) = unpack 'C C n n C', $buf;
            last if length $buf < 8 + $clen + $plen;
            my $content = substr($buf, 8, $clen);
            substr($buf, 0, 8 + $clen + $plen, '');
            if ($type == 1) { $id = $rid; $keep = (unpack 'n C', $content)[1] & 1 }
            elsif ($type == 4) {
                if ($clen) { $pbuf .= $content }
                else { %params = _decode_nv($pbuf) }
            } elsif ($type == 5) {
                return ($id, $keep, \%params, $stdin) if $clen == 0;
                $stdin .= $content;
            }
        }
        next unless $sel->can_read(0.2);
        my $n = sysread($c, my $chunk, 65536);
        return () unless $n;
        $buf .= $chunk;
    }
    return ();
}

sub _decode_nv {
    my $d = shift;
    my %h;
    my $len = sub {
        my $b = ord substr($d, 0, 1);
        if ($b & 0x80) { my $v = unpack('N', substr($d, 0, 4, '')) & 0x7fffffff; return $v }
        substr($d, 0, 1, '');
        return $b;
    };
    while (length $d) {
        my $nl = $len->();
        my $vl = $len->();
        my $n = substr($d, 0, $nl, '');
        $h{$n} = substr($d, 0, $vl, '');
    }
    return %h;
}

# One FastCGI record (content padded to 8 bytes).
sub fcgi_record {
    my ($type, $id, $content) = @_;
    $content //= '';
    my $pad = (8 - length($content) % 8) % 8;
    return pack('C C n n C C', 1, $type, $id, length $content, $pad, 0) . $content . ("\0" x $pad);
}

# STDOUT records for $data (split at 65535), without the empty terminator.
sub fcgi_stdout {
    my ($id, $data) = @_;
    my $out = '';
    while (length $data) { $out .= fcgi_record(6, $id, substr($data, 0, 65535, '')) }
    return $out;
}

sub fcgi_end {
    my ($id, $status) = @_;
    return fcgi_record(6, $id, '') . fcgi_record(3, $id, pack('N C C3', 0, $status // 0, 0, 0, 0));
}

1;
