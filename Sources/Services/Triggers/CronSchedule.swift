import Foundation

/// A cron schedule in UTC: five fields (`minute hour day-of-month month day-of-week`), the
/// `@yearly @monthly @weekly @daily @hourly` shorthands, or `@every <duration>` (`30s`, `5m`,
/// `1h30m`; times are multiples of the duration since the epoch).
///
/// Fields take `*`, numbers, ranges `a-b`, lists `a,b`, steps `*/n` and `a-b/n`; months and days
/// also take names (`jan`, `mon`). Day 0 and 7 are Sunday. When both day fields are restricted,
/// a time matches either (as in Vixie cron).
public struct CronSchedule: Sendable, Hashable, CustomStringConvertible {
    public let text: String
    enum Kind: Hashable {
        case fields(minutes: Set<Int>, hours: Set<Int>, days: Set<Int>, months: Set<Int>, weekdays: Set<Int>, daysRestricted: Bool, weekdaysRestricted: Bool)
        case every(milliseconds: Int64)
    }
    let kind: Kind

    public var description: String { text }

    public init(_ text: String) throws(ServiceError) {
        self.text = text
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        let shorthands = ["@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
                          "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"]
        if trimmed.hasPrefix("@every") {
            let duration = trimmed.dropFirst("@every".count).trimmingCharacters(in: .whitespaces)
            guard let milliseconds = Self.duration(duration), milliseconds >= 1000 else {
                throw ServiceError(.invalidInput, "cron '\(text)': '@every' needs a duration of at least 1s, like 30s, 5m or 1h30m")
            }
            kind = .every(milliseconds: milliseconds)
            return
        }
        let expression = shorthands[trimmed] ?? trimmed
        guard !expression.hasPrefix("@") else { throw ServiceError(.invalidInput, "cron '\(text)': unknown shorthand") }
        let fields = expression.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard fields.count == 5 else {
            throw ServiceError(.invalidInput, "cron '\(text)': needs 5 fields (minute hour day-of-month month day-of-week), @hourly/@daily/..., or @every 30s")
        }
        let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
        let days = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
        let minutes = try Self.field(fields[0], 0...59, names: [], text: text)
        let hours = try Self.field(fields[1], 0...23, names: [], text: text)
        let monthDays = try Self.field(fields[2], 1...31, names: [], text: text)
        let monthSet = try Self.field(fields[3], 1...12, names: months, nameOffset: 1, text: text)
        var weekdays = try Self.field(fields[4], 0...7, names: days, text: text)
        if weekdays.contains(7) { weekdays.remove(7); weekdays.insert(0) }
        kind = .fields(minutes: minutes, hours: hours, days: monthDays, months: monthSet, weekdays: weekdays,
                       daysRestricted: fields[2] != "*", weekdaysRestricted: fields[4] != "*")
    }

    static func field(_ field: String, _ range: ClosedRange<Int>, names: [String], nameOffset: Int = 0, text: String) throws(ServiceError) -> Set<Int> {
        func value(_ token: Substring) throws(ServiceError) -> Int {
            if let number = Int(token), range.contains(number) { return number }
            if let index = names.firstIndex(of: String(token)) { return index + nameOffset }
            throw ServiceError(.invalidInput, "cron '\(text)': '\(token)' is not in \(range.lowerBound)-\(range.upperBound)")
        }
        var values: Set<Int> = []
        for part in field.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            var step = 1
            if pieces.count == 2 {
                guard let parsed = Int(pieces[1]), parsed > 0 else { throw ServiceError(.invalidInput, "cron '\(text)': bad step in '\(part)'") }
                step = parsed
            }
            let base = pieces[0]
            var low = range.lowerBound
            var high = range.upperBound
            if base == "*" {
                // whole range
            } else if let dash = base.firstIndex(of: "-") {
                low = try value(base[..<dash])
                high = try value(base[base.index(after: dash)...])
                guard low <= high else { throw ServiceError(.invalidInput, "cron '\(text)': range '\(base)' runs backwards") }
            } else {
                low = try value(base)
                high = pieces.count == 2 ? range.upperBound : low
            }
            values.formUnion(stride(from: low, through: high, by: step))
        }
        return values
    }

    /// `30s`, `5m`, `1h30m`, `2h` in milliseconds.
    static func duration(_ text: String) -> Int64? {
        var total: Int64 = 0
        var number = ""
        var sawUnit = false
        for character in text {
            if character.isNumber {
                number.append(character)
            } else {
                guard let value = Int64(number), let unit = ["s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000][String(character)] else { return nil }
                total += value * Int64(unit)
                number = ""
                sawUnit = true
            }
        }
        return number.isEmpty && sawUnit ? total : nil
    }

    /// The latest scheduled time `t` with `after < t <= upTo`, or nil when there is none.
    public func latestTime(after: Milliseconds, upTo: Milliseconds) -> Milliseconds? {
        guard upTo > after else { return nil }
        switch kind {
        case .every(let period):
            let latest = upTo - (upTo % period)
            return latest > after ? latest : nil
        case .fields:
            // Walk back minute by minute from upTo (bounded: a year and a day covers every schedule).
            var minute = upTo - (upTo % 60_000)
            let floor = max(after, upTo - 366 * 86_400_000)
            while minute > floor {
                if matches(minute) { return minute }
                minute -= 60_000
            }
            return nil
        }
    }

    /// The first scheduled time strictly after `time` (within about a year), for display.
    public func nextTime(after time: Milliseconds) -> Milliseconds? {
        switch kind {
        case .every(let period):
            return time - (time % period) + period
        case .fields:
            var minute = time - (time % 60_000) + 60_000
            let limit = time + 367 * 86_400_000
            while minute <= limit {
                if matches(minute) { return minute }
                minute += 60_000
            }
            return nil
        }
    }

    static let calendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    func matches(_ time: Milliseconds) -> Bool {
        guard case .fields(let minutes, let hours, let days, let months, let weekdays, let daysRestricted, let weekdaysRestricted) = kind else { return false }
        let parts = Self.calendar.dateComponents([.minute, .hour, .day, .month, .weekday], from: Date(timeIntervalSince1970: Double(time) / 1000))
        guard let minute = parts.minute, let hour = parts.hour, let day = parts.day, let month = parts.month, let weekday = parts.weekday else { return false }
        guard minutes.contains(minute), hours.contains(hour), months.contains(month) else { return false }
        let dayMatches = days.contains(day)
        let weekdayMatches = weekdays.contains(weekday - 1)
        if daysRestricted && weekdaysRestricted { return dayMatches || weekdayMatches }
        return dayMatches && weekdayMatches
    }
}
