// Replays recorded client statements against the server with pgjdbc.
//
// A list file holds statements, each introduced by a line
//   -- @check <name>
// optionally followed by expectation lines
//   -- @rows >0            at least one row
//   -- @columns a,b,c      exactly these result column names, in order
//   -- @contains col=value some row has this value in this column
// and then the statement text (a trailing semicolon is dropped). Other
// comment lines before a statement are part of it, as clients send them.
// Prints "ok replay <file>: <name>" or "not ok replay <file>: <name> -- why".

import java.nio.file.*;
import java.sql.*;
import java.util.*;

public class Replay {
    static final class Step {
        String name;
        String sql = "";
        boolean needRows;
        List<String> columns;
        List<String[]> contains = new ArrayList<>();
    }

    static List<Step> parse(Path file) throws Exception {
        List<Step> steps = new ArrayList<>();
        Step current = null;
        for (String line : Files.readAllLines(file)) {
            String t = line.trim();
            if (t.startsWith("-- @check ")) {
                current = new Step();
                current.name = t.substring("-- @check ".length()).trim();
                steps.add(current);
            } else if (current == null) {
                continue; // the file's own header
            } else if (t.equals("-- @rows >0")) {
                current.needRows = true;
            } else if (t.startsWith("-- @columns ")) {
                current.columns = Arrays.asList(t.substring("-- @columns ".length()).trim().split(","));
            } else if (t.startsWith("-- @contains ")) {
                current.contains.add(t.substring("-- @contains ".length()).trim().split("=", 2));
            } else {
                current.sql += line + "\n";
            }
        }
        for (Step s : steps) {
            s.sql = s.sql.strip();
            if (s.sql.endsWith(";")) {
                s.sql = s.sql.substring(0, s.sql.length() - 1);
            }
        }
        return steps;
    }

    static void run(Connection c, Step step) throws Exception {
        try (PreparedStatement ps = c.prepareStatement(step.sql)) {
            boolean hasRows = ps.execute();
            if (!hasRows) {
                if (step.needRows || step.columns != null) {
                    throw new AssertionError("no result set");
                }
                return;
            }
            try (ResultSet rs = ps.getResultSet()) {
                ResultSetMetaData md = rs.getMetaData();
                List<String> names = new ArrayList<>();
                for (int i = 1; i <= md.getColumnCount(); i++) {
                    names.add(md.getColumnLabel(i));
                }
                if (step.columns != null && !names.equals(step.columns)) {
                    throw new AssertionError("columns " + names + ", expected " + step.columns);
                }
                int rows = 0;
                Set<Integer> found = new HashSet<>();
                while (rs.next()) {
                    rows++;
                    for (int k = 0; k < step.contains.size(); k++) {
                        String[] want = step.contains.get(k);
                        if (want[1].equals(rs.getString(want[0]))) {
                            found.add(k);
                        }
                    }
                }
                if (step.needRows && rows == 0) {
                    throw new AssertionError("no rows");
                }
                for (int k = 0; k < step.contains.size(); k++) {
                    if (!found.contains(k)) {
                        throw new AssertionError("no row with " + String.join("=", step.contains.get(k)));
                    }
                }
            }
        }
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://" + System.getenv("PGHOST") + ":" + System.getenv("PGPORT")
                + "/" + System.getenv("PGDATABASE");
        for (String arg : args) {
            Path file = Paths.get(arg);
            String list = file.getFileName().toString().replace(".sql", "");
            try (Connection c = DriverManager.getConnection(url, System.getenv("PGUSER"),
                    System.getenv("PGPASSWORD"))) {
                for (Step step : parse(file)) {
                    try {
                        run(c, step);
                        System.out.println("ok replay " + list + ": " + step.name);
                    } catch (Throwable e) {
                        String why = (e.getClass().getSimpleName() + ": " + e.getMessage()).replace('\n', ' ');
                        System.out.println("not ok replay " + list + ": " + step.name + " -- "
                                + (why.length() > 300 ? why.substring(0, 300) : why));
                        if (!c.getAutoCommit()) {
                            c.rollback();
                        }
                    }
                }
            }
        }
    }
}
